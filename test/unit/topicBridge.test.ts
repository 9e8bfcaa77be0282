import { describe, expect, it } from "vitest"
import { TopicBridge } from "../../src/gateway/TopicBridge.js"

const setup = () => {
  const io: Array<string> = []
  const published: Array<[string, Uint8Array]> = []
  const bridge = new TopicBridge("p:t:", {
    subscribe: (channel) => io.push(`+${channel}`),
    unsubscribe: (channel) => io.push(`-${channel}`)
  })
  bridge.setPublisher({ publish: (topic, frame) => published.push([topic, frame]) })
  return { bridge, io, published }
}

describe("TopicBridge", () => {
  it("subscribes the channel on the first local subscriber only", () => {
    const { bridge, io } = setup()
    bridge.subscribed("c|r1|0,0")
    bridge.subscribed("c|r1|0,0")
    bridge.subscribed("c|r1|0,0")
    expect(io).toEqual(["+p:t:c|r1|0,0"])
    expect(bridge.refCount("c|r1|0,0")).toBe(3)
    expect(bridge.size).toBe(1)
  })

  it("unsubscribes on the last local unsubscribe only", () => {
    const { bridge, io } = setup()
    bridge.subscribed("a")
    bridge.subscribed("a")
    bridge.unsubscribed("a")
    expect(io).toEqual(["+p:t:a"])
    bridge.unsubscribed("a")
    expect(io).toEqual(["+p:t:a", "-p:t:a"])
    expect(bridge.refCount("a")).toBe(0)
    expect(bridge.size).toBe(0)
  })

  it("ignores unsubscribes of topics with no subscriber (counts never go negative)", () => {
    const { bridge, io } = setup()
    bridge.unsubscribed("ghost")
    bridge.subscribed("a")
    bridge.unsubscribed("a")
    bridge.unsubscribed("a")
    bridge.subscribed("a")
    expect(io).toEqual(["+p:t:a", "-p:t:a", "+p:t:a"])
    expect(bridge.refCount("a")).toBe(1)
  })

  it("resubscribes after going back to zero", () => {
    const { bridge, io } = setup()
    for (let i = 0; i < 3; i++) {
      bridge.subscribed("x")
      bridge.unsubscribed("x")
    }
    expect(io).toEqual(["+p:t:x", "-p:t:x", "+p:t:x", "-p:t:x", "+p:t:x", "-p:t:x"])
  })

  it("keeps topics independent and lists the channels to resubscribe", () => {
    const { bridge } = setup()
    bridge.subscribed("a")
    bridge.subscribed("b")
    bridge.subscribed("b")
    bridge.unsubscribed("a")
    expect(bridge.channels()).toEqual(["p:t:b"])
    expect(bridge.channelOf("zz")).toBe("p:t:zz")
  })

  it("delivers channel messages to the publisher under the topic name, only while subscribed", () => {
    const { bridge, published } = setup()
    const frame = new Uint8Array([1, 2, 3])
    expect(bridge.deliver("p:t:a", frame)).toBe(false)
    bridge.subscribed("a")
    expect(bridge.deliver("p:t:a", frame)).toBe(true)
    expect(bridge.deliver("p:t:b", frame)).toBe(false)
    expect(bridge.deliver("other", frame)).toBe(false)
    bridge.unsubscribed("a")
    expect(bridge.deliver("p:t:a", frame)).toBe(false)
    expect(published).toEqual([["a", frame]])
  })

  it("drops messages while no publisher is set", () => {
    const { bridge, published } = setup()
    bridge.subscribed("a")
    bridge.setPublisher(undefined)
    expect(bridge.deliver("p:t:a", new Uint8Array([9]))).toBe(false)
    expect(published).toEqual([])
  })

  it("clear() unsubscribes every channel and forgets the counts", () => {
    const { bridge, io } = setup()
    bridge.subscribed("a")
    bridge.subscribed("a")
    bridge.subscribed("b")
    io.length = 0
    bridge.clear()
    expect(io.sort()).toEqual(["-p:t:a", "-p:t:b"])
    expect(bridge.size).toBe(0)
    expect(bridge.refCount("a")).toBe(0)
    bridge.subscribed("a")
    expect(io).toContain("+p:t:a")
  })

  it("handles topics containing the separator characters", () => {
    const { bridge, published } = setup()
    const topic = "chat|w:exp-1|x"
    bridge.subscribed(topic)
    const frame = new Uint8Array([7])
    expect(bridge.deliver(`p:t:${topic}`, frame)).toBe(true)
    expect(published).toEqual([[topic, frame]])
  })
})
