import { describe, expect, it } from "vitest"
import * as Metrics from "../../src/observability/Metrics.js"

describe("Metrics exposition", () => {
  it("renders a counter", () => {
    const r = new Metrics.Registry()
    const c = r.counter("t_requests_total", "Requests.")
    expect(r.render()).toBe("# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\nt_requests_total 0\n")
    c.inc()
    c.inc(2.5)
    expect(r.render()).toBe("# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\nt_requests_total 3.5\n")
  })

  it("renders a labelled counter with pre-created children in declaration order", () => {
    const r = new Metrics.Registry()
    const v = r.counterVec("t_rejected_total", "Rejected.", "reason", ["bad_frame", "rate_limited"] as const)
    v.rate_limited.inc()
    v.rate_limited.inc()
    expect(r.render()).toBe(
      "# HELP t_rejected_total Rejected.\n" +
        "# TYPE t_rejected_total counter\n" +
        "t_rejected_total{reason=\"bad_frame\"} 0\n" +
        "t_rejected_total{reason=\"rate_limited\"} 2\n"
    )
  })

  it("renders gauges: set/inc/dec and sampled at scrape time", () => {
    const r = new Metrics.Registry()
    const g = r.gauge("t_connections", "Open connections.")
    g.set(10)
    g.inc()
    g.dec(3)
    let live = 4
    r.gauge("t_sessions", "Sessions.", () => live)
    const failing = r.gauge("t_broken", "Broken sampler.")
    failing.sampleWith(() => {
      throw new Error("boom")
    })
    live = 5
    expect(r.render()).toBe(
      "# HELP t_connections Open connections.\n# TYPE t_connections gauge\nt_connections 8\n" +
        "# HELP t_sessions Sessions.\n# TYPE t_sessions gauge\nt_sessions 5\n" +
        "# HELP t_broken Broken sampler.\n# TYPE t_broken gauge\nt_broken NaN\n"
    )
    failing.sampleWith(undefined)
    failing.set(-1.5)
    expect(r.render()).toContain("t_broken -1.5\n")
  })

  it("renders a histogram with cumulative buckets, +Inf, sum and count", () => {
    const r = new Metrics.Registry()
    const h = r.histogram("t_tick_seconds", "Tick.", [0.001, 0.01, 0.1])
    h.observe(0.0005)
    h.observe(0.001) // upper bounds are inclusive
    h.observe(0.05)
    h.observe(3)
    expect(r.render()).toBe(
      "# HELP t_tick_seconds Tick.\n" +
        "# TYPE t_tick_seconds histogram\n" +
        "t_tick_seconds_bucket{le=\"0.001\"} 2\n" +
        "t_tick_seconds_bucket{le=\"0.01\"} 2\n" +
        "t_tick_seconds_bucket{le=\"0.1\"} 3\n" +
        "t_tick_seconds_bucket{le=\"+Inf\"} 4\n" +
        `t_tick_seconds_sum ${0.0005 + 0.001 + 0.05 + 3}\n` +
        "t_tick_seconds_count 4\n"
    )
  })

  it("renders an empty histogram and a labelled histogram", () => {
    const r = new Metrics.Registry()
    r.histogram("t_empty_seconds", "Empty.", [1])
    const v = r.histogramVec("t_op_seconds", "Op.", [0.5], "op", ["read"] as const)
    v.read.observe(0.25)
    expect(r.render()).toBe(
      "# HELP t_empty_seconds Empty.\n# TYPE t_empty_seconds histogram\n" +
        "t_empty_seconds_bucket{le=\"1\"} 0\nt_empty_seconds_bucket{le=\"+Inf\"} 0\n" +
        "t_empty_seconds_sum 0\nt_empty_seconds_count 0\n" +
        "# HELP t_op_seconds Op.\n# TYPE t_op_seconds histogram\n" +
        "t_op_seconds_bucket{op=\"read\",le=\"0.5\"} 1\nt_op_seconds_bucket{op=\"read\",le=\"+Inf\"} 1\n" +
        "t_op_seconds_sum{op=\"read\"} 0.25\nt_op_seconds_count{op=\"read\"} 1\n"
    )
  })

  it("escapes HELP text and label values", () => {
    const r = new Metrics.Registry()
    r.gaugeVec("t_weird", "Back\\slash and\nnewline.", "v", ["a\"b", "c\\d", "e\nf"] as const)
    expect(r.render()).toBe(
      "# HELP t_weird Back\\\\slash and\\nnewline.\n" +
        "# TYPE t_weird gauge\n" +
        "t_weird{v=\"a\\\"b\"} 0\n" +
        "t_weird{v=\"c\\\\d\"} 0\n" +
        "t_weird{v=\"e\\nf\"} 0\n"
    )
  })

  it("formats special values", () => {
    expect(Metrics.formatValue(Infinity)).toBe("+Inf")
    expect(Metrics.formatValue(-Infinity)).toBe("-Inf")
    expect(Metrics.formatValue(NaN)).toBe("NaN")
    expect(Metrics.formatValue(1e-7)).toBe("1e-7")
    expect(Metrics.formatValue(42)).toBe("42")
  })

  it("rejects bad registrations", () => {
    const r = new Metrics.Registry({ prefix: "tessera_" })
    r.counter("tessera_ok_total", "ok")
    expect(() => r.counter("tessera_ok_total", "again")).toThrow(/registered twice/)
    expect(() => r.counter("other_total", "x")).toThrow(/must start with tessera_/)
    expect(() => r.counter("tessera_bad-name", "x")).toThrow(/invalid metric name/)
    expect(() => r.counterVec("tessera_a_total", "x", "le", ["1"])).toThrow(/invalid label name/)
    expect(() => r.counterVec("tessera_b_total", "x", "__x", ["1"])).toThrow(/invalid label name/)
    expect(() => r.counterVec("tessera_c_total", "x", "reason", ["a", "a"])).toThrow(/duplicate/)
    expect(() => r.histogram("tessera_h", "x", [0.1, 0.1])).toThrow(/strictly increasing/)
    expect(() => r.histogram("tessera_h2", "x", [0.1, Infinity])).toThrow(/finite/)
  })
})

describe("Tessera metrics", () => {
  const text = Metrics.renderPrometheus()

  it("defines every documented metric with its type", () => {
    const expected: Array<[string, string]> = [
      ["tessera_connections", "gauge"],
      ["tessera_connections_total", "counter"],
      ["tessera_messages_in_total", "counter"],
      ["tessera_messages_out_total", "counter"],
      ["tessera_bytes_in_total", "counter"],
      ["tessera_bytes_out_total", "counter"],
      ["tessera_messages_rejected_total", "counter"],
      ["tessera_messages_dropped_total", "counter"],
      ["tessera_clients_dropped_total", "counter"],
      ["tessera_tick_duration_seconds", "histogram"],
      ["tessera_regions", "gauge"],
      ["tessera_sessions", "gauge"],
      ["tessera_players", "gauge"],
      ["tessera_inputs_total", "counter"],
      ["tessera_snapshots_published_total", "counter"],
      ["tessera_chat_messages_total", "counter"],
      ["tessera_chat_rejected_total", "counter"],
      ["tessera_auth_total", "counter"],
      ["tessera_storage_flush_total", "counter"],
      ["tessera_storage_flush_errors_total", "counter"],
      ["tessera_storage_flush_duration_seconds", "histogram"]
    ]
    for (const [name, type] of expected) expect(text).toContain(`# TYPE ${name} ${type}\n`)
  })

  it("pre-creates every label value", () => {
    for (
      const line of [
        "tessera_messages_rejected_total{reason=\"bad_frame\"}",
        "tessera_messages_rejected_total{reason=\"unknown_op\"}",
        "tessera_messages_rejected_total{reason=\"bad_shape\"}",
        "tessera_messages_rejected_total{reason=\"too_large\"}",
        "tessera_messages_rejected_total{reason=\"rate_limited\"}",
        "tessera_messages_dropped_total{reason=\"backpressure\"}",
        "tessera_clients_dropped_total{reason=\"lagging\"}",
        "tessera_clients_dropped_total{reason=\"abuse\"}",
        "tessera_clients_dropped_total{reason=\"replaced\"}",
        "tessera_chat_rejected_total{reason=\"moderation\"}",
        "tessera_chat_rejected_total{reason=\"rate_limited\"}",
        "tessera_auth_total{result=\"ok\"}",
        "tessera_auth_total{result=\"rejected\"}",
        "tessera_auth_total{result=\"limited\"}",
        "tessera_tick_duration_seconds_bucket{le=\"0.0001\"}",
        "tessera_tick_duration_seconds_bucket{le=\"0.1\"}"
      ]
    ) expect(text).toContain(line + " ")
  })

  it("is valid exposition text: every line is a comment or `name{labels} value`", () => {
    const sampleLine = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?)$/
    expect(text.endsWith("\n")).toBe(true)
    for (const line of text.slice(0, -1).split("\n")) {
      if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue
      expect(line).toMatch(sampleLine)
    }
  })
})
