import { describe, expect, it } from "vitest"
import { MAX_MESH_DEPTH } from "../../src/config/ConfigSchema.js"
import * as Metrics from "../../src/observability/Metrics.js"

const SAMPLE_LINE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?)$/

/** Every line is a HELP/TYPE comment or a well-formed sample. */
const expectValidExposition = (text: string): void => {
  expect(text.endsWith("\n")).toBe(true)
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue
    expect(line).toMatch(SAMPLE_LINE)
  }
}

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

describe("Metrics with run-time label values", () => {
  it("a gauge family renders no samples until a value is set, then one series per label value", () => {
    const r = new Metrics.Registry()
    const g = r.gaugeByLabel("t_region_players", "Players.", "region")
    expect(r.render()).toBe("# HELP t_region_players Players.\n# TYPE t_region_players gauge\n")
    g.set("w.world/0/0/0/0", 3)
    g.set("w.world/1/1/0/1", 7)
    g.set("w.world/0/0/0/0", 4) // same series, new value
    g.inc("w.world/1/1/0/1")
    g.dec("w.world/1/1/0/1", 3)
    expect(g.size).toBe(2)
    expect(r.render()).toBe(
      "# HELP t_region_players Players.\n# TYPE t_region_players gauge\n" +
        "t_region_players{region=\"w.world/0/0/0/0\"} 4\n" +
        "t_region_players{region=\"w.world/1/1/0/1\"} 5\n"
    )
  })

  it("delete removes a series from the exposition; a later update starts it afresh", () => {
    const r = new Metrics.Registry()
    const g = r.gaugeByLabel("t_g", "G.", "region")
    g.set("a", 1)
    g.set("b", 2)
    expect(g.delete("a")).toBe(true)
    expect(g.delete("a")).toBe(false)
    expect(g.delete("never")).toBe(false)
    expect(r.render()).toBe("# HELP t_g G.\n# TYPE t_g gauge\nt_g{region=\"b\"} 2\n")
    g.inc("a")
    expect(r.render()).toBe("# HELP t_g G.\n# TYPE t_g gauge\nt_g{region=\"b\"} 2\nt_g{region=\"a\"} 1\n")
    g.clear()
    expect(g.size).toBe(0)
    expect(r.render()).toBe("# HELP t_g G.\n# TYPE t_g gauge\n")
  })

  it("a histogram family renders buckets per label value, the label before le", () => {
    const r = new Metrics.Registry()
    const h = r.histogramByLabel("t_tick_seconds", "Tick.", [0.01, 0.1], "region")
    h.observe("r1", 0.005)
    h.observe("r1", 0.05)
    h.observe("r2", 1)
    expect(r.render()).toBe(
      "# HELP t_tick_seconds Tick.\n# TYPE t_tick_seconds histogram\n" +
        "t_tick_seconds_bucket{region=\"r1\",le=\"0.01\"} 1\n" +
        "t_tick_seconds_bucket{region=\"r1\",le=\"0.1\"} 2\n" +
        "t_tick_seconds_bucket{region=\"r1\",le=\"+Inf\"} 2\n" +
        "t_tick_seconds_sum{region=\"r1\"} 0.055\n" +
        "t_tick_seconds_count{region=\"r1\"} 2\n" +
        "t_tick_seconds_bucket{region=\"r2\",le=\"0.01\"} 0\n" +
        "t_tick_seconds_bucket{region=\"r2\",le=\"0.1\"} 0\n" +
        "t_tick_seconds_bucket{region=\"r2\",le=\"+Inf\"} 1\n" +
        "t_tick_seconds_sum{region=\"r2\"} 1\n" +
        "t_tick_seconds_count{region=\"r2\"} 1\n"
    )
    h.delete("r1")
    expect(r.render()).not.toContain("r1")
    expect(h.get("r2")?.count).toBe(1)
  })

  it("a counter family counts per label value", () => {
    const r = new Metrics.Registry()
    const c = r.counterByLabel("t_c_total", "C.", "world")
    c.inc("w1")
    c.inc("w1", 2)
    expect(r.render()).toBe("# HELP t_c_total C.\n# TYPE t_c_total counter\nt_c_total{world=\"w1\"} 3\n")
  })

  it("escapes label values given at run time", () => {
    const r = new Metrics.Registry()
    const g = r.gaugeByLabel("t_weird", "W.", "v")
    for (const [i, value] of ["a\"b", "c\\d", "e\nf", "", "ünï ☃"].entries()) g.set(value, i)
    const text = r.render()
    expect(text).toBe(
      "# HELP t_weird W.\n# TYPE t_weird gauge\n" +
        "t_weird{v=\"a\\\"b\"} 0\n" +
        "t_weird{v=\"c\\\\d\"} 1\n" +
        "t_weird{v=\"e\\nf\"} 2\n" +
        "t_weird{v=\"\"} 3\n" +
        "t_weird{v=\"ünï ☃\"} 4\n"
    )
    expectValidExposition(text)
  })

  it("child() returns the series to keep; get() never creates one", () => {
    const r = new Metrics.Registry()
    const h = r.histogramByLabel("t_h", "H.", [1], "region")
    expect(h.get("r")).toBeUndefined()
    expect(h.size).toBe(0)
    const child = h.child("r")!
    child.observe(0.5)
    expect(h.child("r")).toBe(child)
    expect(h.get("r")).toBe(child)
    expect(h.get("r")!.count).toBe(1)
  })

  it("caps the number of series: updates for new values are ignored and reported, existing ones still work", () => {
    const r = new Metrics.Registry()
    const overflowed: Array<string> = []
    const g = r.gaugeByLabel("t_capped", "Capped.", "region", {
      maxSeries: 2,
      onOverflow: (value) => overflowed.push(value)
    })
    g.set("a", 1)
    g.set("b", 2)
    g.set("c", 3) // over the cap: ignored
    g.inc("c")
    expect(g.child("c")).toBeUndefined()
    g.set("a", 10) // existing series: fine
    expect(g.size).toBe(2)
    expect(g.dropped).toBe(3)
    expect(overflowed).toEqual(["c", "c", "c"])
    expect(r.render()).toBe(
      "# HELP t_capped Capped.\n# TYPE t_capped gauge\nt_capped{region=\"a\"} 10\nt_capped{region=\"b\"} 2\n"
    )
    g.delete("b") // frees a slot
    g.set("c", 3)
    expect(r.render()).toContain("t_capped{region=\"c\"} 3\n")
    expect(g.dropped).toBe(3)

    const h = r.histogramByLabel("t_capped_seconds", "H.", [1], "region", { maxSeries: 1 })
    h.observe("x", 0.5)
    h.observe("y", 0.5)
    expect(h.size).toBe(1)
    expect(h.dropped).toBe(1)
    expect(h.maxSeries).toBe(1)
    expect(r.gaugeByLabel("t_default_cap", "D.", "region").maxSeries).toBe(Metrics.DEFAULT_MAX_SERIES)
  })

  it("rejects bad registrations", () => {
    const r = new Metrics.Registry({ prefix: "tessera_" })
    r.gaugeByLabel("tessera_dyn", "x", "region")
    expect(() => r.gaugeByLabel("tessera_dyn", "x", "region")).toThrow(/registered twice/)
    expect(() => r.gaugeByLabel("other", "x", "region")).toThrow(/must start with tessera_/)
    expect(() => r.gaugeByLabel("tessera_a", "x", "le")).toThrow(/invalid label name/)
    expect(() => r.histogramByLabel("tessera_b", "x", [1], "bad-label")).toThrow(/invalid label name/)
    expect(() => r.counterByLabel("tessera_c", "x", "region", { maxSeries: 0 })).toThrow(/maxSeries/)
    expect(() => r.histogramByLabel("tessera_d", "x", [2, 1], "region")).toThrow(/strictly increasing/)
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
      ["tessera_storage_flush_duration_seconds", "histogram"],
      ["tessera_metric_series_dropped_total", "counter"],
      ["tessera_authority_transfer_total", "counter"],
      ["tessera_authority_transfer_duration_seconds", "histogram"],
      ["tessera_authority_transfer_failures_total", "counter"],
      ["tessera_mesh_regions", "gauge"],
      ["tessera_region_players", "gauge"],
      ["tessera_region_tick_duration_seconds", "histogram"],
      ["tessera_relocations_total", "counter"],
      ["tessera_player_moves_total", "counter"],
      ["tessera_inputs_forwarded_total", "counter"],
      ["tessera_mesh_splits_total", "counter"],
      ["tessera_mesh_merges_total", "counter"],
      ["tessera_world_deltas_total", "counter"],
      ["tessera_transfer_log_dropped_total", "counter"]
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
        "tessera_clients_dropped_total{reason=\"terminated\"}",
        "tessera_chat_rejected_total{reason=\"moderation\"}",
        "tessera_chat_rejected_total{reason=\"rate_limited\"}",
        "tessera_auth_total{result=\"ok\"}",
        "tessera_auth_total{result=\"rejected\"}",
        "tessera_auth_total{result=\"limited\"}",
        "tessera_tick_duration_seconds_bucket{le=\"0.0001\"}",
        "tessera_tick_duration_seconds_bucket{le=\"0.1\"}",
        "tessera_mesh_regions{level=\"0\"}",
        "tessera_mesh_regions{level=\"4\"}",
        "tessera_authority_transfer_duration_seconds_bucket{le=\"0.0005\"}",
        "tessera_authority_transfer_duration_seconds_bucket{le=\"1\"}"
      ]
    ) expect(text).toContain(line + " ")
  })

  it("is valid exposition text: every line is a comment or `name{labels} value`", () => {
    expectValidExposition(text)
  })

  it("has one mesh level per octree level the config allows", () => {
    expect(Metrics.MESH_LEVELS).toEqual(Array.from({ length: MAX_MESH_DEPTH + 1 }, (_, i) => String(i)))
  })

  it("per-region families are capped and count what they drop", () => {
    expect(Metrics.regionPlayers.maxSeries).toBe(Metrics.REGION_SERIES_MAX)
    expect(Metrics.regionTickDurationSeconds.maxSeries).toBe(Metrics.REGION_SERIES_MAX)
    const region = "frontier.world/2/3/0/1"
    Metrics.regionPlayers.set(region, 12)
    Metrics.regionTickDurationSeconds.observe(region, 0.004)
    try {
      const live = Metrics.renderPrometheus()
      expect(live).toContain(`tessera_region_players{region="${region}"} 12\n`)
      expect(live).toContain(`tessera_region_tick_duration_seconds_bucket{region="${region}",le="0.005"} 1\n`)
      expectValidExposition(live)
      const dropped = Metrics.metricSeriesDroppedTotal.value
      for (let i = 0; i <= Metrics.REGION_SERIES_MAX; i++) Metrics.regionPlayers.set(`r${i}`, i)
      expect(Metrics.regionPlayers.size).toBe(Metrics.REGION_SERIES_MAX)
      expect(Metrics.metricSeriesDroppedTotal.value).toBe(dropped + 2) // region already held a slot
    } finally {
      Metrics.regionPlayers.clear()
      Metrics.regionTickDurationSeconds.delete(region)
    }
    expect(Metrics.renderPrometheus()).not.toContain(region)
  })
})
