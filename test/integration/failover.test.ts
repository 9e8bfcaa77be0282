import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { TesseraClient } from "../../src/client/TesseraClient.js"
import { acksResumed, connectGuest, sleep, waitFor, walk } from "../support/clients.js"
import { type ClusterNode, startCluster } from "../support/Cluster.js"

let cluster: Awaited<ReturnType<typeof startCluster>>
const clients: Array<TesseraClient> = []
const nodes = (roles: string): Array<ClusterNode> => cluster.nodes.filter((n) => n.roles === roles)

beforeAll(async () => {
  // Two region runners: one will be killed, the other takes its shards over.
  cluster = await startCluster(["gateway", "region,session", "region,session", "expert:chat,scheduler"])
}, 90_000)

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})))
  await cluster?.stop()
})

describe("failover", () => {
  it("kill -9 of the runner hosting a region: it comes back on the other runner, players keep playing", async () => {
    const gateway = nodes("gateway")[0]!.server
    const a = await connectGuest(gateway, "failover-a")
    const b = await connectGuest(gateway, "failover-b")
    clients.push(a, b)
    const ja = await a.join("arena")
    const jb = await b.join("arena")
    expect(jb.worldId).toBe(ja.worldId)
    await walk(a, 1, 0, 0, 10)
    const stop = a.sendInput(0, 0, 0)
    await waitFor("acks", () => a.lastAckedSeq >= stop)
    await sleep(1500) // past the write-behind window
    const before = { ...a.world.entities.get(ja.entityId)! }

    // Which region runner hosts the instance?
    const [first, second] = nodes("region,session")
    const host = (await first!.server.metric("tessera_regions")) > 0 ? first! : second!
    const spare = host === first ? second! : first!
    const killedAt = Date.now()
    await host.server.stop("SIGKILL")

    // The clients stay connected to their gateway; inputs resume once the region is back.
    const recovered = await acksResumed(a, stop, "region re-activated on the spare runner and acking inputs")
    const failoverMs = recovered - killedAt
    expect(failoverMs).toBeLessThan(10_000)
    process.stderr.write(`failover: region acking again ${failoverMs} ms after kill -9\n`)
    expect(await spare.server.metric("tessera_regions")).toBe(1)
    expect(a.state).toBe("open")

    // Back from the last flushed state, same entities, no duplicates.
    const after = a.world.entities.get(ja.entityId)!
    expect(Math.abs(after.x - before.x)).toBeLessThan(1)
    await waitFor("b still sees a, and only two entities", () =>
      b.world.entities.has(ja.entityId) && b.world.entities.size === 2
    )
    expect([...a.world.entities.keys()].sort()).toEqual([ja.entityId, jb.entityId].sort())
  }, 60_000)

  it("SIGTERM of a region runner hands its regions over in a few seconds without losing players", async () => {
    const gateway = nodes("gateway")[0]!.server
    const c = await connectGuest(gateway, "handover-c")
    clients.push(c)
    const jc = await c.join("lobby")
    const seq0 = await walk(c, 1, 0, 0, 4)
    await waitFor("acks", () => c.lastAckedSeq >= seq0)
    // A fresh region runner for the one left from the previous test to hand over to. Joining it may
    // already move shards (rebalancing), so look for the host among every live region runner.
    await cluster.addNode("region,session")
    const isLive = (n: ClusterNode) => n.server.child.exitCode === null && n.server.child.signalCode === null
    const live = nodes("region,session").filter(isLive)
    let host: ClusterNode | undefined
    for (const deadline = Date.now() + 10_000; host === undefined && Date.now() < deadline; await sleep(100)) {
      const hosting = await Promise.all(live.map(async (n) => (await n.server.metric("tessera_regions")) > 0))
      host = live[hosting.indexOf(true)]
    }
    if (host === undefined) throw new Error("no region runner hosts the region")
    const others = live.filter((n) => n !== host)
    const stoppedAt = Date.now()
    const exit = await host.server.stop("SIGTERM")
    expect(exit.code).toBe(0)
    const recovered = await acksResumed(c, seq0, "region handed over and acking inputs")
    process.stderr.write(`handover: region acking again ${recovered - stoppedAt} ms after SIGTERM\n`)
    expect(recovered - stoppedAt).toBeLessThan(10_000)
    const hostedAfter = await Promise.all(others.map((n) => n.server.metric("tessera_regions")))
    expect(hostedAfter.some((n) => n >= 1)).toBe(true)
    expect(c.world.entities.has(jc.entityId)).toBe(true)
  }, 60_000)
})
