import { describe, expect, it } from "vitest"
import { isProbeIndex, LatencyHistogram } from "../../src/bots/Crowd.js"
import { CrowdArgsError, parseCrowdArgs } from "../../src/bots/parseCrowdArgs.js"

const base = ["--url", "ws://127.0.0.1:7350", "--ccu", "200"]

describe("parseCrowdArgs", () => {
  const ok: ReadonlyArray<readonly [string, ReadonlyArray<string>, Record<string, unknown>]> = [
    ["defaults", base, { url: "ws://127.0.0.1:7350", ccu: 200, roomSize: 50, seconds: 20 }],
    [
      "every flag",
      [
        ...base,
        "--room-size",
        "25",
        "--seconds",
        "7.5",
        "--server-pid",
        "4242",
        "--experience",
        "lobby",
        "--probes",
        "12",
        "--ramp",
        "150",
        "--warmup",
        "0",
        "--device-prefix",
        "gw-b"
      ],
      {
        url: "ws://127.0.0.1:7350",
        ccu: 200,
        roomSize: 25,
        seconds: 7.5,
        serverPid: 4242,
        experience: "lobby",
        probes: 12,
        rampPerSecond: 150,
        warmupSeconds: 0,
        devicePrefix: "gw-b"
      }
    ],
    ["--flag=value form", ["--url=ws://localhost:1", "--ccu=3", "--probes=0"], { url: "ws://localhost:1", ccu: 3, probes: 0 }],
    ["a leading -- is ignored", ["--", ...base], { ccu: 200 }],
    ["wss", ["--url", "wss://example.test", "--ccu", "1"], { url: "wss://example.test", ccu: 1 }]
  ]

  it.each(ok)("%s", (_name, argv, expected) => {
    const options = parseCrowdArgs(argv)
    expect(options).toMatchObject(expected)
  })

  it("leaves unset optional flags out (exactOptionalPropertyTypes)", () => {
    const options = parseCrowdArgs(base)
    expect(Object.keys(options).sort()).toEqual(["ccu", "roomSize", "seconds", "url"])
  })

  const bad: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
    [[], /--url is required/],
    [["--url", "ws://h:1"], /--ccu is required/],
    [["--url", "http://h:1", "--ccu", "1"], /--url must start with ws:\/\/ or wss:\/\//],
    [["--url", "not a url", "--ccu", "1"], /--url must be a WebSocket address/],
    [["--url", "ws://h:1/?x=1", "--ccu", "1"], /query/],
    [[...base.slice(0, 2), "--ccu", "0"], /--ccu must be an integer >= 1, got "0"/],
    [[...base.slice(0, 2), "--ccu", "2.5"], /--ccu must be an integer/],
    [[...base.slice(0, 2), "--ccu", "-5"], /--ccu must be an integer/],
    [[...base.slice(0, 2), "--ccu", "12abc"], /--ccu must be an integer/],
    [[...base, "--room-size", "0"], /--room-size must be an integer >= 1/],
    [[...base, "--seconds", "0"], /--seconds must be a number > 0/],
    [[...base, "--seconds", "abc"], /--seconds must be a number > 0, got "abc"/],
    [[...base, "--seconds", ""], /--seconds must be a number > 0/],
    [[...base, "--server-pid", "pid"], /--server-pid must be an integer >= 1/],
    [[...base, "--probes", "201"], /--probes \(201\) cannot exceed --ccu \(200\)/],
    [[...base, "--ramp", "-1"], /--ramp must be a number > 0/],
    [[...base, "--warmup", "-1"], /--warmup must be a number >= 0/],
    [[...base, "--device-prefix", "no spaces"], /--device-prefix must be/],
    [[...base, "--experience", "x".repeat(65)], /--experience must be an id of 1..64/],
    [[...base, "--seconds"], /--seconds needs a value/],
    [[...base, "--seconds", "--ccu", "3"], /--seconds needs a value/],
    [[...base, "--rooms", "3"], /unknown option --rooms; expected one of --url, --ccu/],
    [[...base, "200"], /unexpected argument "200"/],
    [[...base, "--ccu", "5"], /--ccu given twice/]
  ]

  it.each(bad)("rejects %j", (argv, message) => {
    expect(() => parseCrowdArgs(argv)).toThrow(CrowdArgsError)
    expect(() => parseCrowdArgs(argv)).toThrow(message)
  })
})

describe("crowd helpers", () => {
  it.each([
    [200, 10],
    [2000, 100],
    [7, 7],
    [10, 3],
    [1, 0]
  ])("isProbeIndex spreads exactly %i/%i probes evenly", (n, probes) => {
    const picked = Array.from({ length: n }, (_, i) => i).filter((i) => isProbeIndex(i, n, probes))
    expect(picked.length).toBe(probes)
    if (probes > 1) {
      const gaps = picked.slice(1).map((p, i) => p - picked[i])
      expect(Math.max(...gaps) - Math.min(...gaps)).toBeLessThanOrEqual(1)
    }
  })

  it("LatencyHistogram percentiles at 0.1 ms resolution, exact max", () => {
    const h = new LatencyHistogram()
    expect(h.percentile(0.5)).toBeNull()
    for (let i = 1; i <= 100; i++) h.record(i) // 1..100 ms
    expect(h.count).toBe(100)
    expect(h.percentile(0.5)).toBeCloseTo(50.1, 5)
    expect(h.percentile(0.99)).toBeCloseTo(99.1, 5)
    expect(h.percentile(1)).toBe(100)
    h.record(123_456)
    expect(h.max).toBe(123_456)
    expect(h.percentile(1)).toBe(123_456)
    h.reset()
    expect(h.count).toBe(0)
    expect(h.percentile(0.99)).toBeNull()
  })
})
