/**
 * Every Tessera metric, as `tessera_`-prefixed constants, and the Prometheus
 * text exposition of them.
 *
 * Hand-rolled for the hot path: `messagesInTotal.inc()` is a number add on a
 * plain object, `messagesRejectedTotal.rate_limited.inc()` a property access
 * and an add: no Effect, no allocation, no label lookup. Labelled metrics
 * have a fixed set of label values, and their children are created when the
 * metric is registered. All the formatting cost is paid at scrape time.
 *
 * Label values that are only known at run time (region keys) use the
 * `*ByLabel` families instead: a Map lookup per update, series created on
 * first use and removed with `delete`, and a cap on the number of series so
 * an unbounded label cannot eat the process's memory or the scrape.
 *
 * Add a metric: one `registry.counter(...)`/`gauge`/`histogram`/`*Vec`/`*ByLabel`
 * line below. Names are checked at registration (prefix, charset, duplicates).
 */

/** Content-Type of `renderPrometheus()` for the /metrics endpoint. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

// ---------------------------------------------------------------------------
// Metric kinds

/** A monotonically increasing count. `inc(n)` expects n >= 0 (not checked). */
export class Counter {
  value = 0
  inc(n = 1): void {
    this.value += n
  }
}

/**
 * A value that goes up and down: set/inc/dec it, or give it a sampler that is
 * called at scrape time (`sampleWith(() => sessions.size)`), which then wins.
 */
export class Gauge {
  value = 0
  private sampler: (() => number) | undefined = undefined
  set(v: number): void {
    this.value = v
  }
  inc(n = 1): void {
    this.value += n
  }
  dec(n = 1): void {
    this.value -= n
  }
  /** Sample at scrape time instead of the stored value; `undefined` removes it. */
  sampleWith(sampler: (() => number) | undefined): void {
    this.sampler = sampler
  }
  /** The value a scrape reports: the sampler's (NaN if it throws) or the stored one. */
  read(): number {
    if (this.sampler === undefined) return this.value
    try {
      return this.sampler()
    } catch {
      return Number.NaN
    }
  }
}

/** Observations in fixed buckets (upper bounds, ascending), plus sum and count. */
export class Histogram {
  /** Non-cumulative count per bucket; index `bounds.length` is the +Inf bucket. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor(readonly bounds: ReadonlyArray<number>) {
    for (let i = 0; i < bounds.length; i++) {
      const b = bounds[i]!
      if (!Number.isFinite(b)) throw new Error(`histogram bucket bounds must be finite, got ${b}`)
      if (i > 0 && !(b > bounds[i - 1]!)) throw new Error("histogram bucket bounds must be strictly increasing")
    }
    this.counts = new Float64Array(bounds.length + 1)
  }
  /** Records one observation (seconds for *_seconds metrics). */
  observe(v: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && v > bounds[i]!) i++
    this.counts[i] += 1
    this.sum += v
    this.count += 1
  }
}

/** A labelled metric: one pre-created child per fixed label value. */
export type Vec<V extends string, M> = { readonly [K in V]: M }

type Kind = "counter" | "gauge" | "histogram"
type Child = Counter | Gauge | Histogram

/** One series of a family: its rendered label pairs (`reason="x"`, "" when unlabelled) and its metric. */
interface Series {
  readonly labels: string
  readonly metric: Child
}

interface Family {
  readonly name: string
  readonly help: string
  readonly kind: Kind
  /** The series, in rendering order (iterated at scrape time, so it may change between scrapes). */
  readonly children: Iterable<Series>
}

/** Default cap on the series of one `*ByLabel` family. */
export const DEFAULT_MAX_SERIES = 1000

export interface ByLabelOptions {
  /**
   * Most series (label values) the family holds at once (default
   * DEFAULT_MAX_SERIES). When full, an update for a NEW label value is
   * ignored (existing series keep working) and `onOverflow` is called;
   * `delete` frees a slot.
   */
  readonly maxSeries?: number
  /** Called once per ignored update, e.g. to count it in a metric. */
  readonly onOverflow?: (labelValue: string) => void
}

/**
 * A family of one metric kind with one label whose values are known only at
 * run time. Series are created on first update and rendered in creation
 * order; `delete` removes a series (e.g. when its region stops) so it is no
 * longer exported.
 */
abstract class ByLabel<M extends Child> {
  private readonly series = new Map<string, Series & { readonly metric: M }>()
  /** Updates ignored because the family was full. */
  dropped = 0
  readonly maxSeries: number
  private readonly onOverflow: ((labelValue: string) => void) | undefined

  constructor(readonly name: string, readonly label: string, options: ByLabelOptions) {
    const max = options.maxSeries ?? DEFAULT_MAX_SERIES
    if (!Number.isSafeInteger(max) || max < 1) throw new Error(`${name}: maxSeries must be a positive integer, got ${max}`)
    this.maxSeries = max
    this.onOverflow = options.onOverflow
  }

  protected abstract create(): M

  /**
   * The series for `value`, created if needed; undefined when the family is
   * full (the update is dropped and counted). A caller may keep the returned
   * metric to skip the lookup, until it `delete`s the value.
   */
  child(value: string): M | undefined {
    const existing = this.series.get(value)
    if (existing !== undefined) return existing.metric
    if (this.series.size >= this.maxSeries) {
      this.dropped++
      this.onOverflow?.(value)
      return undefined
    }
    const metric = this.create()
    this.series.set(value, { labels: `${this.label}="${escapeLabelValue(value)}"`, metric })
    return metric
  }

  /** The series for `value` if it exists (never creates one). */
  get(value: string): M | undefined {
    return this.series.get(value)?.metric
  }

  /** Removes the series for `value`; true if there was one. */
  delete(value: string): boolean {
    return this.series.delete(value)
  }

  /** Removes every series. */
  clear(): void {
    this.series.clear()
  }

  /** Series currently held. */
  get size(): number {
    return this.series.size
  }

  /** @internal the rendering view */
  children(): Iterable<Series> {
    return this.series.values()
  }
}

/** Counters by a run-time label value. */
export class CounterByLabel extends ByLabel<Counter> {
  protected create(): Counter {
    return new Counter()
  }
  inc(value: string, n = 1): void {
    this.child(value)?.inc(n)
  }
}

/** Gauges by a run-time label value. */
export class GaugeByLabel extends ByLabel<Gauge> {
  protected create(): Gauge {
    return new Gauge()
  }
  set(value: string, v: number): void {
    this.child(value)?.set(v)
  }
  inc(value: string, n = 1): void {
    this.child(value)?.inc(n)
  }
  dec(value: string, n = 1): void {
    this.child(value)?.dec(n)
  }
}

/** Histograms (same buckets) by a run-time label value. */
export class HistogramByLabel extends ByLabel<Histogram> {
  constructor(name: string, label: string, readonly buckets: ReadonlyArray<number>, options: ByLabelOptions) {
    super(name, label, options)
    new Histogram(buckets) // validates the bounds now rather than on first observe
  }
  protected create(): Histogram {
    return new Histogram(this.buckets)
  }
  observe(value: string, v: number): void {
    this.child(value)?.observe(v)
  }
}

// ---------------------------------------------------------------------------
// Exposition format helpers

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const RESERVED_LABELS = new Set(["le", "quantile"])

/** HELP text: backslash and newline are escaped. */
export const escapeHelp = (s: string): string => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** Label values: backslash, double quote and newline are escaped. */
export const escapeLabelValue = (s: string): string =>
  s.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/** A sample value as Prometheus parses it (Go ParseFloat): +Inf, -Inf, NaN, or a JS number. */
export const formatValue = (v: number): string =>
  v === Number.POSITIVE_INFINITY ? "+Inf" : v === Number.NEGATIVE_INFINITY ? "-Inf" : Number.isNaN(v) ? "NaN" : String(v)

const sample = (name: string, labels: string, value: number): string =>
  labels === "" ? `${name} ${formatValue(value)}\n` : `${name}{${labels}} ${formatValue(value)}\n`

const joinLabels = (a: string, b: string): string => a === "" ? b : b === "" ? a : `${a},${b}`

const renderFamily = (f: Family): string => {
  let out = `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.kind}\n`
  for (const { labels, metric } of f.children) {
    if (metric instanceof Counter) {
      out += sample(f.name, labels, metric.value)
    } else if (metric instanceof Gauge) {
      out += sample(f.name, labels, metric.read())
    } else {
      let cumulative = 0
      for (let i = 0; i < metric.bounds.length; i++) {
        cumulative += metric.counts[i]!
        out += sample(`${f.name}_bucket`, joinLabels(labels, `le="${formatValue(metric.bounds[i]!)}"`), cumulative)
      }
      out += sample(`${f.name}_bucket`, joinLabels(labels, `le="+Inf"`), metric.count)
      out += sample(`${f.name}_sum`, labels, metric.sum)
      out += sample(`${f.name}_count`, labels, metric.count)
    }
  }
  return out
}

const checkLabel = (name: string, label: string): string => {
  if (!LABEL_NAME.test(label) || label.startsWith("__") || RESERVED_LABELS.has(label)) {
    throw new Error(`invalid label name ${JSON.stringify(label)} for ${name}`)
  }
  return label
}

// ---------------------------------------------------------------------------
// Registry

/** A set of metric families rendered together, in registration order. */
export class Registry {
  private readonly families: Array<Family> = []
  private readonly names = new Set<string>()
  /** Every name must start with `prefix` (default: none). */
  constructor(private readonly options: { readonly prefix?: string } = {}) {}

  counter(name: string, help: string): Counter {
    const c = new Counter()
    this.add({ name, help, kind: "counter", children: [{ labels: "", metric: c }] })
    return c
  }

  counterVec<V extends string>(name: string, help: string, label: string, values: ReadonlyArray<V>): Vec<V, Counter> {
    return this.vec(name, help, "counter", label, values, () => new Counter())
  }

  gauge(name: string, help: string, sampler?: () => number): Gauge {
    const g = new Gauge()
    if (sampler !== undefined) g.sampleWith(sampler)
    this.add({ name, help, kind: "gauge", children: [{ labels: "", metric: g }] })
    return g
  }

  gaugeVec<V extends string>(name: string, help: string, label: string, values: ReadonlyArray<V>): Vec<V, Gauge> {
    return this.vec(name, help, "gauge", label, values, () => new Gauge())
  }

  histogram(name: string, help: string, buckets: ReadonlyArray<number>): Histogram {
    const h = new Histogram(buckets)
    this.add({ name, help, kind: "histogram", children: [{ labels: "", metric: h }] })
    return h
  }

  histogramVec<V extends string>(
    name: string,
    help: string,
    buckets: ReadonlyArray<number>,
    label: string,
    values: ReadonlyArray<V>
  ): Vec<V, Histogram> {
    return this.vec(name, help, "histogram", label, values, () => new Histogram(buckets))
  }

  counterByLabel(name: string, help: string, label: string, options: ByLabelOptions = {}): CounterByLabel {
    return this.byLabel(name, help, "counter", new CounterByLabel(name, checkLabel(name, label), options))
  }

  gaugeByLabel(name: string, help: string, label: string, options: ByLabelOptions = {}): GaugeByLabel {
    return this.byLabel(name, help, "gauge", new GaugeByLabel(name, checkLabel(name, label), options))
  }

  histogramByLabel(
    name: string,
    help: string,
    buckets: ReadonlyArray<number>,
    label: string,
    options: ByLabelOptions = {}
  ): HistogramByLabel {
    return this.byLabel(name, help, "histogram", new HistogramByLabel(name, checkLabel(name, label), buckets, options))
  }

  /** The Prometheus text exposition (format 0.0.4) of every family. */
  render(): string {
    let out = ""
    for (const f of this.families) out += renderFamily(f)
    return out
  }

  private vec<V extends string, M extends Child>(
    name: string,
    help: string,
    kind: Kind,
    label: string,
    values: ReadonlyArray<V>,
    create: () => M
  ): Vec<V, M> {
    checkLabel(name, label)
    if (values.length === 0) throw new Error(`${name}: a labelled metric needs at least one label value`)
    if (new Set(values).size !== values.length) throw new Error(`${name}: duplicate label values`)
    if (values.includes("__proto__" as V)) throw new Error(`${name}: "__proto__" is not a usable label value`)
    // A plain object (not Object.create(null), which V8 keeps in slow
    // dictionary mode): children are read on the hot path.
    const children: Record<string, M> = {}
    const rendered: Array<{ labels: string; metric: Child }> = []
    for (const v of values) {
      const m = create()
      children[v] = m
      rendered.push({ labels: `${label}="${escapeLabelValue(v)}"`, metric: m })
    }
    this.add({ name, help, kind, children: rendered })
    return Object.freeze(children) as Vec<V, M>
  }

  private byLabel<F extends ByLabel<Child>>(name: string, help: string, kind: Kind, family: F): F {
    this.add({ name, help, kind, children: { [Symbol.iterator]: () => family.children()[Symbol.iterator]() } })
    return family
  }

  private add(family: Family): void {
    const { name } = family
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`)
    const prefix = this.options.prefix
    if (prefix !== undefined && !name.startsWith(prefix)) throw new Error(`metric ${name} must start with ${prefix}`)
    if (this.names.has(name)) throw new Error(`metric ${name} registered twice`)
    this.names.add(name)
    this.families.push(family)
  }
}

/** The process-wide registry behind /metrics. */
export const registry = new Registry({ prefix: "tessera_" })

/** The /metrics body. */
export const renderPrometheus = (): string => registry.render()

// ---------------------------------------------------------------------------
// Buckets

/** 100 µs .. 100 ms: a 20 Hz tick has a 50 ms budget. */
export const tickBuckets: ReadonlyArray<number> = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1
]

/** 1 ms .. 2.5 s: a write-behind batch. */
export const storageBuckets: ReadonlyArray<number> = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5
]

// ---------------------------------------------------------------------------
// Gateway

export const connections = registry.gauge("tessera_connections", "Open client connections.")
export const connectionsTotal = registry.counter("tessera_connections_total", "Client connections accepted.")
export const messagesInTotal = registry.counter("tessera_messages_in_total", "Client messages received.")
export const messagesOutTotal = registry.counter("tessera_messages_out_total", "Messages sent to clients.")
export const bytesInTotal = registry.counter("tessera_bytes_in_total", "Bytes received from clients.")
export const bytesOutTotal = registry.counter("tessera_bytes_out_total", "Bytes sent to clients.")
export const messagesRejectedTotal = registry.counterVec(
  "tessera_messages_rejected_total",
  "Client messages rejected before handling, by reason.",
  "reason",
  ["bad_frame", "unknown_op", "bad_shape", "too_large", "rate_limited"] as const
)
export const messagesDroppedTotal = registry.counterVec(
  "tessera_messages_dropped_total",
  "Outgoing messages dropped, by reason.",
  "reason",
  ["backpressure"] as const
)
export const clientsDroppedTotal = registry.counterVec(
  "tessera_clients_dropped_total",
  "Clients disconnected by the server, by reason.",
  "reason",
  ["lagging", "abuse", "replaced", "terminated"] as const
)
export const authTotal = registry.counterVec(
  "tessera_auth_total",
  "Authentication attempts, by result.",
  "result",
  ["ok", "rejected", "limited"] as const
)

// ---------------------------------------------------------------------------
// Simulation and actors

export const tickDurationSeconds = registry.histogram(
  "tessera_tick_duration_seconds",
  "Duration of one region tick.",
  tickBuckets
)
export const regions = registry.gauge("tessera_regions", "Active region entities in this process.")
export const sessions = registry.gauge("tessera_sessions", "Active session entities in this process.")
export const players = registry.gauge("tessera_players", "Players in regions hosted by this process.")
export const inputsTotal = registry.counter("tessera_inputs_total", "Player inputs routed by gateways to regions.")
export const snapshotsPublishedTotal = registry.counter(
  "tessera_snapshots_published_total",
  "Interest-cell snapshot buffers published."
)

// ---------------------------------------------------------------------------
// Chat

export const chatMessagesTotal = registry.counter("tessera_chat_messages_total", "Chat messages accepted.")
export const chatRejectedTotal = registry.counterVec(
  "tessera_chat_rejected_total",
  "Chat messages rejected, by reason.",
  "reason",
  ["moderation", "rate_limited"] as const
)

// ---------------------------------------------------------------------------
// Storage

export const storageFlushTotal = registry.counter("tessera_storage_flush_total", "Write-behind flushes attempted.")
export const storageFlushErrorsTotal = registry.counter(
  "tessera_storage_flush_errors_total",
  "Write-behind flushes that failed (rows kept for the next flush)."
)
export const storageFlushDurationSeconds = registry.histogram(
  "tessera_storage_flush_duration_seconds",
  "Duration of one write-behind flush.",
  storageBuckets
)

export const dependencyUp = registry.gaugeVec(
  "tessera_dependency_up",
  "1 when the dependency answered its last check, 0 when it did not (storage = SQLite or PostgreSQL).",
  "dependency",
  ["storage", "redis"] as const
)

/**
 * 1, labelled with this process's cluster runner address (`host:port`, as the cluster registers it
 * and as `POST /v1/admin/runners/<address>/drain` takes it). One series per process.
 */
export const runnerInfo = registry.gaugeByLabel(
  "tessera_runner_info",
  "Always 1; the address label is this process's cluster runner address (host:port), the one a drain names.",
  "address",
  { maxSeries: 4 }
)

// ---------------------------------------------------------------------------
// Cardinality

export const metricSeriesDroppedTotal = registry.counter(
  "tessera_metric_series_dropped_total",
  "Updates ignored because a metric with run-time label values already held its maximum number of series."
)

/** Cap on the series of each per-region family (one series per region hosted by this process). */
export const REGION_SERIES_MAX = 2000

const regionSeries: ByLabelOptions = {
  maxSeries: REGION_SERIES_MAX,
  onOverflow: () => metricSeriesDroppedTotal.inc()
}

// ---------------------------------------------------------------------------
// Open worlds (server meshing)

/** 0.5 ms .. 1 s: an authority transfer between two regions (same process to cross-node). */
export const transferBuckets: ReadonlyArray<number> = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1
]

export const authorityTransferTotal = registry.counter(
  "tessera_authority_transfer_total",
  "Authority transfers of entities between regions, whatever their outcome."
)
export const authorityTransferDurationSeconds = registry.histogram(
  "tessera_authority_transfer_duration_seconds",
  "Duration of one completed authority transfer, from the source region's decision to the target's acceptance.",
  transferBuckets
)
export const authorityTransferFailuresTotal = registry.counter(
  "tessera_authority_transfer_failures_total",
  "Authority transfers that did not complete (failed or aborted); the entity stayed with its source region."
)
/** Octree levels: "0" = root cubes .. "4" = region_size / 16 (config MAX_MESH_DEPTH). */
export const MESH_LEVELS = ["0", "1", "2", "3", "4"] as const
export const meshRegions = registry.gaugeVec(
  "tessera_mesh_regions",
  "Leaf regions of the open worlds' meshes, by octree level (0 = root cube).",
  "level",
  MESH_LEVELS
)
export const regionPlayers = registry.gaugeByLabel(
  "tessera_region_players",
  "Players in each region hosted by this process (region = the region's key).",
  "region",
  regionSeries
)
export const regionTickDurationSeconds = registry.histogramByLabel(
  "tessera_region_tick_duration_seconds",
  "Duration of one tick, by region hosted by this process (the mesh splits a region whose p99 exceeds its tick budget).",
  tickBuckets,
  "region",
  regionSeries
)
export const relocationsTotal = registry.counter(
  "tessera_relocations_total",
  "Players a gateway moved to another region of their open world after an authority transfer (inputs and cell subscriptions follow)."
)
export const playerMovesTotal = registry.counter(
  "tessera_player_moves_total",
  "Players a gateway moved seamlessly to another world or instance on the server's behalf (Moved + Joined, no Join from the client), or closed with 4006 when there was none."
)
export const inputsForwardedTotal = registry.counter(
  "tessera_inputs_forwarded_total",
  "Input batches a region forwarded to the neighbouring region that has taken authority of their players."
)
export const meshSplitsTotal = registry.counter("tessera_mesh_splits_total", "Regions split into 8.")
export const meshMergesTotal = registry.counter("tessera_mesh_merges_total", "Groups of 8 sibling regions merged into one.")
export const worldDeltasTotal = registry.counter(
  "tessera_world_deltas_total",
  "World modification deltas written to storage."
)
export const transferLogDroppedTotal = registry.counter(
  "tessera_transfer_log_dropped_total",
  "Authority transfer log entries dropped unwritten (oldest first) because storage was unavailable for too long."
)

// --- Scheduler: autoscaling and health (one series per experience; the Kubernetes actuator's HPA inputs) ---
const experienceSeries = { maxSeries: 1000 }
export const experiencePlayersPerInstance = registry.gaugeByLabel(
  "tessera_experience_players_per_instance",
  "Players (placed and queued) per active instance of each autoscaled experience, as the scheduler sees it (an HPA's per-pod target).",
  "experience",
  experienceSeries
)
export const experienceQueueLength = registry.gaugeByLabel(
  "tessera_experience_queue_length",
  "Players waiting for a place in each experience (matchmaking queues), as last reported to the scheduler.",
  "experience",
  experienceSeries
)
export const experienceInstances = registry.gaugeByLabel(
  "tessera_experience_instances",
  "Active (healthy, not draining) instances of each autoscaled experience.",
  "experience",
  experienceSeries
)
export const experienceDesiredInstances = registry.gaugeByLabel(
  "tessera_experience_desired_instances",
  "Instances the scaling policy wants for each autoscaled experience (current +/- its last decision).",
  "experience",
  experienceSeries
)
export const scalingDecisionsTotal = registry.counterVec(
  "tessera_scaling_decisions_total",
  "Scaling decisions that changed something (scale up or down) or changed their reason (hold).",
  "decision",
  ["ScaleUp", "ScaleDown", "Hold"] as const
)
export const unhealthyInstancesTotal = registry.counter(
  "tessera_unhealthy_instances_total",
  "Instances the scheduler found unhealthy (missed heartbeats or over a threshold); their players were moved."
)
export const unhealthyRunnersTotal = registry.counter(
  "tessera_unhealthy_runners_total",
  "Runners the scheduler found unhealthy (missed heartbeats or over a threshold)."
)
export const heartbeatsTotal = registry.counter("tessera_heartbeats_total", "Instance heartbeats received by the scheduler.")
