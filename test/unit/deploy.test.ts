/**
 * The deployment artifacts under deploy/ must not drift from the binary: roles, config keys / env
 * names, ports, probe paths and shutdown timing are all checked against the source of truth
 * (src/cluster/Roles.ts, src/config/ConfigSchema.ts, scripts/build.mjs, src/observability/Metrics.ts).
 *
 * The Nomad job is parsed with a real HCL2 parser (@cdktf/hcl2json: HashiCorp's hcl/v2 compiled to
 * WebAssembly) and the k3s manifests with a real YAML parser (yaml).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { parse as parseHcl } from "@cdktf/hcl2json"
import * as Yaml from "yaml"
import { beforeAll, describe, expect, it } from "vitest"
import { ALL_ROLES, parseRoles, type Role } from "../../src/cluster/Roles.js"
import { configKeys, defaultConfig, type KeySpec } from "../../src/config/ConfigSchema.js"
import * as Metrics from "../../src/observability/Metrics.js"

const repoFile = (relative: string): string => fileURLToPath(new URL(`../../${relative}`, import.meta.url))
const read = (relative: string): string => Fs.readFileSync(repoFile(relative), "utf8")

// Parsed HCL/YAML trees are untyped JSON; the tests below check their shape as they go.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

// ---------------------------------------------------------------------------------------------
// The source of truth

/** A config key by its TOML path; fails loudly when the key was renamed or removed. */
const configKey = (tomlPath: string): KeySpec => {
  const key = configKeys.find((k) => k.tomlPath === tomlPath)
  if (key === undefined) throw new Error(`config key ${tomlPath} is not in configKeys (src/config/ConfigSchema.ts)`)
  return key
}
const envOf = (tomlPath: string): string => configKey(tomlPath).env

/** The keys a multi-node deployment sets; each lookup breaks this test if the key is renamed. */
const MULTI_NODE_KEYS = [
  "server.roles",
  "server.host",
  "server.port",
  "server.dev",
  "server.shutdown_timeout_ms",
  "auth.secret",
  "storage.backend",
  "storage.postgres_url",
  "redis.enabled",
  "redis.url",
  "cluster.transport",
  "cluster.runner_host",
  "cluster.runner_port"
] as const

const KNOWN_ENV = new Set(configKeys.map((k) => k.env))
const ROLES_ENV = "TESSERA_SERVER_ROLES"
const HTTP_PORT = defaultConfig.server.port
const SHUTDOWN_MS_DEFAULT = defaultConfig.server.shutdownTimeoutMs

/** Every TESSERA_* name used in a text (comments included: a stale name in a comment misleads too). */
const tesseraNames = (text: string): ReadonlyArray<string> => text.match(/\bTESSERA_[A-Z0-9_]*[A-Z0-9]\b/g) ?? []

/** Kubernetes / Nomad names cannot hold ":" — "expert:chat" becomes "expert-chat". */
const dnsName = (role: Role): string => role.replace(/:/g, "-")

/** The one role an env value selects, or a failure naming what it parsed to. */
const singleRole = (value: unknown, where: string): Role => {
  expect(typeof value, `${where}: ${ROLES_ENV} must be a string`).toBe("string")
  const roles = [...parseRoles([value as string])]
  expect(roles, `${where}: ${ROLES_ENV}=${String(value)} must select exactly one role`).toHaveLength(1)
  return roles[0]!
}

/** "25s", "1m30s", "500ms" -> milliseconds. */
const durationMs = (text: string): number => {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g
  let total = 0
  let consumed = 0
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"]
    consumed += m[0].length
  }
  if (consumed === 0 || consumed !== text.length) throw new Error(`not a duration: ${text}`)
  return total
}

/** Files under a folder, recursively. */
const walk = (dir: string): ReadonlyArray<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = Path.join(dir, entry.name)
    return entry.isDirectory() ? walk(full) : [full]
  })

describe("the config keys the deployments rely on", () => {
  it("exist in configKeys", () => {
    const missing = MULTI_NODE_KEYS.filter((p) => !configKeys.some((k) => k.tomlPath === p))
    expect(missing).toEqual([])
  })

  it("every TESSERA_* name anywhere under deploy/ is a config key's env name", () => {
    for (const file of walk(repoFile("deploy"))) {
      const unknown = tesseraNames(Fs.readFileSync(file, "utf8")).filter(
        (name) => name !== ROLES_ENV && !KNOWN_ENV.has(name)
      )
      expect(unknown, `${Path.relative(repoFile("."), file)} uses names that are not config keys`).toEqual([])
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  readonly op: string
  readonly args: string
}

/** Dockerfile instructions, with line continuations joined and comments dropped. */
const dockerInstructions = (text: string): ReadonlyArray<Instruction> => {
  const out: Array<Instruction> = []
  let current = ""
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (current === "" && (line.startsWith("#") || line === "")) continue
    if (line.startsWith("#")) continue
    if (line.endsWith("\\")) {
      current += `${line.slice(0, -1)} `
      continue
    }
    current += line
    const m = /^(\S+)\s*(.*)$/s.exec(current)
    if (m !== null) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() })
    current = ""
  }
  return out
}

/** The exec form of ENTRYPOINT/CMD (JSON array), or the shell form split on spaces. */
const execForm = (args: string): ReadonlyArray<string> =>
  args.startsWith("[") ? (JSON.parse(args) as ReadonlyArray<string>) : args.split(/\s+/).filter((s) => s.length > 0)

describe("deploy/docker/Dockerfile", () => {
  const all = dockerInstructions(read("deploy/docker/Dockerfile"))
  const lastFrom = all.map((i) => i.op).lastIndexOf("FROM")
  const runtime = all.slice(lastFrom)
  const one = (op: string): Instruction | undefined => runtime.filter((i) => i.op === op).at(-1)
  // The bundle path the build script writes.
  const bundle = /outfile:\s*"([^"]+)"/.exec(read("scripts/build.mjs"))?.[1]

  it("is multi-stage on node:20-bookworm-slim", () => {
    expect(all.filter((i) => i.op === "FROM").length).toBeGreaterThanOrEqual(2)
    const text = all.filter((i) => i.op === "FROM" || i.op === "ARG").map((i) => i.args).join("\n")
    expect(text).toContain("node:20-bookworm-slim")
  })

  it("runs `node <bundle> serve` (the bundle scripts/build.mjs writes)", () => {
    expect(bundle).toBe("dist/tessera.mjs")
    const entrypoint = one("ENTRYPOINT")
    expect(entrypoint).toBeDefined()
    const cmd = one("CMD")
    const argv = [...execForm(entrypoint!.args), ...(cmd === undefined ? [] : execForm(cmd.args))]
    expect(argv.slice(0, 3)).toEqual(["node", bundle, "serve"])
  })

  it("exposes the HTTP port and the runner port, as the config defaults", () => {
    const exposed = runtime
      .filter((i) => i.op === "EXPOSE")
      .flatMap((i) => i.args.split(/\s+/))
      .map((p) => Number(p.replace(/\/tcp$/, "")))
      .sort((a, b) => a - b)
    expect(exposed).toEqual([HTTP_PORT, configKey("cluster.runner_port").field.default as number].sort((a, b) => a - b))
  })

  it("checks /health, stops with SIGTERM and runs as a non-root user", () => {
    expect(one("HEALTHCHECK")?.args).toContain("/health")
    expect(one("STOPSIGNAL")?.args).toBe("SIGTERM")
    const user = one("USER")?.args
    expect(user).toBeDefined()
    expect(user).not.toMatch(/^(root|0)(:|$)/)
  })

  it("sets only known TESSERA_* variables and listens on all interfaces", () => {
    const env = runtime.filter((i) => i.op === "ENV").map((i) => i.args).join(" ")
    expect(env).toContain(`${envOf("server.host")}=0.0.0.0`)
  })

  it("copies the production node_modules, dist and config into the runtime stage", () => {
    const copies = runtime.filter((i) => i.op === "COPY").map((i) => i.args)
    expect(copies.some((c) => c.includes("node_modules"))).toBe(true)
    expect(copies.some((c) => c.includes("dist"))).toBe(true)
    expect(copies.some((c) => c.includes("config"))).toBe(true)
    expect(all.some((i) => i.op === "RUN" && i.args.includes("--omit=dev"))).toBe(true)
  })
})

// ---------------------------------------------------------------------------------------------
// Nomad

describe("deploy/nomad/tessera.nomad.hcl", () => {
  let hcl: Json
  let job: Json
  let groups: ReadonlyArray<readonly [string, Json]>

  /** A group's one task. */
  const taskOf = (group: Json): Json => {
    const tasks = Object.values(group.task ?? {}) as ReadonlyArray<ReadonlyArray<Json>>
    expect(tasks).toHaveLength(1)
    expect(tasks[0]).toHaveLength(1)
    return tasks[0]![0]
  }

  /** Env of a task: its env blocks plus KEY=VALUE lines of templates rendered with env = true. */
  const envOfTask = (task: Json): Record<string, string> => {
    const env: Record<string, string> = {}
    for (const block of task.env ?? []) Object.assign(env, block)
    for (const template of task.template ?? []) {
      if (template.env !== true) continue
      for (const m of String(template.data).matchAll(/^\s*([A-Z][A-Z0-9_]*)=(.*)$/gm)) env[m[1]!] = m[2]!.trim()
    }
    return env
  }

  const variable = (name: string): Json => {
    const v = hcl.variable?.[name]
    expect(v, `variable "${name}"`).toBeDefined()
    expect(v).toHaveLength(1)
    return v[0]
  }

  beforeAll(async () => {
    hcl = await parseHcl("tessera.nomad.hcl", read("deploy/nomad/tessera.nomad.hcl"))
    const jobs = Object.values(hcl.job ?? {}) as ReadonlyArray<ReadonlyArray<Json>>
    expect(jobs).toHaveLength(1)
    expect(jobs[0]).toHaveLength(1)
    job = jobs[0]![0]
    groups = Object.entries(job.group ?? {}).map(([name, blocks]) => {
      expect(blocks, `group "${name}" is declared once`).toHaveLength(1)
      return [name, (blocks as ReadonlyArray<Json>)[0]] as const
    })
  })

  it("has exactly one task group per role, and its role env selects exactly that role", () => {
    const roles = groups.map(([name, group]) => {
      const role = singleRole(envOfTask(taskOf(group))[ROLES_ENV], `group "${name}"`)
      expect(name, "a group is named after its role").toBe(dnsName(role))
      return role
    })
    expect([...roles].sort()).toEqual([...ALL_ROLES].sort())
  })

  it("uses only config keys' env names", () => {
    for (const [name, group] of groups) {
      const unknown = Object.keys(envOfTask(taskOf(group))).filter(
        (k) => k.startsWith("TESSERA_") && k !== ROLES_ENV && !KNOWN_ENV.has(k)
      )
      expect(unknown, `group "${name}"`).toEqual([])
    }
  })

  it("configures every runner for the multi-node cluster (postgres, redis, socket transport)", () => {
    for (const [name, group] of groups) {
      const env = envOfTask(taskOf(group))
      const where = `group "${name}"`
      expect(env[envOf("server.host")], where).toBe("0.0.0.0")
      expect(env[envOf("server.dev")], where).toBe("false")
      expect(env[envOf("storage.backend")], where).toBe("postgres")
      expect(env[envOf("storage.postgres_url")], where).toBeTruthy()
      expect(env[envOf("redis.enabled")], where).toBe("true")
      expect(env[envOf("redis.url")], where).toBeTruthy()
      expect(env[envOf("cluster.transport")], where).toBe("socket")
      expect(env[envOf("auth.secret")], where).toBeTruthy()
    }
  })

  it("maps http to the config's port and advertises the runner port it listens on", () => {
    for (const [name, group] of groups) {
      const where = `group "${name}"`
      expect(group.network, where).toHaveLength(1)
      const ports = group.network[0].port
      expect(ports.http?.[0]?.to, where).toBe(HTTP_PORT)
      // The runner port is identity-mapped (no `to`, no static): cluster.runner_port is both the
      // port the runner listens on and the one the others dial, so inside == outside.
      expect(ports.runner, where).toHaveLength(1)
      expect(ports.runner[0].to ?? -1, where).toBe(-1)
      const env = envOfTask(taskOf(group))
      expect(env[envOf("server.port")], where).toBe("${NOMAD_PORT_http}")
      expect(env[envOf("cluster.runner_host")], where).toBe("${NOMAD_IP_runner}")
      expect(env[envOf("cluster.runner_port")], where).toBe("${NOMAD_PORT_runner}")
      const config = taskOf(group).config[0]
      expect([...config.ports].sort(), where).toEqual(["http", "runner"])
    }
  })

  it("registers a service per group with a /health liveness check and a /ready readiness check", () => {
    for (const [name, group] of groups) {
      const where = `group "${name}"`
      expect(group.service, where).toHaveLength(1)
      const service = group.service[0]
      expect(service.port, where).toBe("http")
      const checks: ReadonlyArray<Json> = service.check ?? []
      const liveness = checks.filter((c) => c.type === "http" && c.path === "/health")
      const readiness = checks.filter((c) => c.type === "http" && c.path === "/ready")
      expect(liveness, where).toHaveLength(1)
      expect(readiness, where).toHaveLength(1)
      expect(liveness[0].check_restart, `${where}: liveness restarts the task`).toHaveLength(1)
      expect(checks.map((c) => c.path).sort(), where).toEqual(["/health", "/ready"])
    }
  })

  it("rolls deploys on health checks with auto-revert", () => {
    for (const [name, group] of groups) {
      const update = group.update?.[0] ?? job.update?.[0]
      const where = `group "${name}"`
      expect(update, where).toBeDefined()
      expect(update.health_check, where).toBe("checks")
      expect(update.auto_revert, where).toBe(true)
      expect(update.max_parallel, where).toBeGreaterThanOrEqual(1)
      expect(durationMs(update.min_healthy_time), where).toBeGreaterThan(0)
    }
  })

  it("sends SIGTERM and waits longer than the drain before killing", () => {
    const drainMs = Math.max(
      SHUTDOWN_MS_DEFAULT,
      ...groups.map(([, g]) => Number(envOfTask(taskOf(g))[envOf("server.shutdown_timeout_ms")] ?? 0))
    )
    for (const [name, group] of groups) {
      const task = taskOf(group)
      expect(task.kill_signal, `group "${name}"`).toBe("SIGTERM")
      expect(durationMs(task.kill_timeout), `group "${name}"`).toBeGreaterThan(drainMs)
    }
  })

  it("runs the image variable with the docker driver, and counts come from variables", () => {
    expect(variable("image").type).toBe("${string}")
    for (const [name, group] of groups) {
      const task = taskOf(group)
      expect(task.driver).toBe("docker")
      expect(task.config[0].image).toBe("${var.image}")
      const count = /^\$\{var\.([a-z_]+)\}$/.exec(String(group.count))
      expect(count, `group "${name}" count is a variable`).not.toBeNull()
      expect(variable(count![1]!).default).toBeGreaterThanOrEqual(1)
    }
  })

  it("gives region the most cpu and memory", () => {
    const resources = new Map(groups.map(([name, g]) => [name, taskOf(g).resources[0]] as const))
    const region = resources.get(dnsName("region"))
    expect(region).toBeDefined()
    for (const [name, r] of resources) {
      if (name === "region") continue
      expect(region.cpu, `region cpu > ${name}`).toBeGreaterThan(r.cpu)
      expect(region.memory, `region memory >= ${name}`).toBeGreaterThanOrEqual(r.memory)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// k3s

interface Resource {
  readonly file: string
  readonly doc: Json
}

const labelsMatch = (selector: Record<string, string> | undefined, labels: Record<string, string>): boolean =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels[k] === v)

describe("deploy/k3s", () => {
  const dir = "deploy/k3s"
  const kustomization: Json = Yaml.parse(read(`${dir}/kustomization.yaml`))
  const files: ReadonlyArray<string> = kustomization.resources
  const resources: ReadonlyArray<Resource> = files.flatMap((file) =>
    Yaml.parseAllDocuments(read(`${dir}/${file}`)).map((d) => {
      expect(d.errors, `${file} parses`).toEqual([])
      return { file, doc: d.toJS() as Json }
    })
  )
  const ofKind = (kind: string): ReadonlyArray<Json> => resources.filter((r) => r.doc?.kind === kind).map((r) => r.doc)
  const deployments = ofKind("Deployment")
  const configMaps = new Map<string, Record<string, string>>(ofKind("ConfigMap").map((c) => [c.metadata.name, c.data ?? {}]))
  const container = (d: Json): Json => {
    expect(d.spec.template.spec.containers, d.metadata.name).toHaveLength(1)
    return d.spec.template.spec.containers[0]
  }
  /** Effective env of a Deployment's container: envFrom ConfigMaps, then env (which wins). */
  const effectiveEnv = (d: Json): Record<string, Json> => {
    const env: Record<string, Json> = {}
    const c = container(d)
    for (const from of c.envFrom ?? []) {
      const data = configMaps.get(from.configMapRef?.name)
      expect(data, `${d.metadata.name}: ConfigMap ${from.configMapRef?.name} is in the kustomization`).toBeDefined()
      Object.assign(env, data)
    }
    for (const e of c.env ?? []) env[e.name] = e.value ?? e.valueFrom
    return env
  }
  const drainMs = Math.max(
    SHUTDOWN_MS_DEFAULT,
    ...[...configMaps.values()].map((d) => Number(d[envOf("server.shutdown_timeout_ms")] ?? 0))
  )
  const runnerPort = configKey("cluster.runner_port").field.default as number

  it("the kustomization lists every manifest in the folder", () => {
    const yamls = Fs.readdirSync(repoFile(dir)).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    expect([...files].sort()).toEqual(yamls.sort())
    expect(resources.every((r) => r.doc.metadata?.namespace === "tessera" || r.doc.kind === "Namespace")).toBe(true)
  })

  it("has exactly one Deployment per role, and its role env selects exactly that role", () => {
    const roles = deployments.map((d) => {
      const roleEnv = (container(d).env ?? []).filter((e: Json) => e.name === ROLES_ENV)
      expect(roleEnv, `${d.metadata.name} sets ${ROLES_ENV} itself`).toHaveLength(1)
      const role = singleRole(roleEnv[0].value, d.metadata.name)
      expect(d.metadata.name).toBe(`tessera-${dnsName(role)}`)
      return role
    })
    expect([...roles].sort()).toEqual([...ALL_ROLES].sort())
    for (const data of configMaps.values()) expect(Object.keys(data)).not.toContain(ROLES_ENV)
  })

  it("uses only config keys' env names", () => {
    for (const [name, data] of configMaps) {
      expect(Object.keys(data).filter((k) => !KNOWN_ENV.has(k)), `ConfigMap ${name}`).toEqual([])
    }
    for (const d of deployments) {
      const unknown = Object.keys(effectiveEnv(d)).filter(
        (k) => k.startsWith("TESSERA_") && k !== ROLES_ENV && !KNOWN_ENV.has(k)
      )
      expect(unknown, d.metadata.name).toEqual([])
      expect(d.spec.template.spec.enableServiceLinks, `${d.metadata.name}: no service link env`).toBe(false)
    }
  })

  it("configures every runner for the multi-node cluster, secrets by reference", () => {
    for (const d of deployments) {
      const env = effectiveEnv(d)
      const where = d.metadata.name
      expect(env[envOf("server.host")], where).toBe("0.0.0.0")
      expect(env[envOf("server.dev")], where).toBe("false")
      expect(env[envOf("storage.backend")], where).toBe("postgres")
      expect(env[envOf("redis.enabled")], where).toBe("true")
      expect(env[envOf("redis.url")], where).toBeTruthy()
      expect(env[envOf("cluster.transport")], where).toBe("socket")
      expect(env[envOf("cluster.runner_host")], where).toEqual({ fieldRef: { fieldPath: "status.podIP" } })
      expect(env[envOf("auth.secret")]?.secretKeyRef?.name, `${where}: auth secret from a Secret`).toBeTruthy()
      expect(env[envOf("storage.postgres_url")]?.secretKeyRef?.name, `${where}: postgres URL from a Secret`).toBeTruthy()
    }
    // No Secret is committed.
    expect(ofKind("Secret")).toEqual([])
  })

  it("ports match the config defaults", () => {
    for (const d of deployments) {
      const env = effectiveEnv(d)
      const ports = new Map<string, number>((container(d).ports ?? []).map((p: Json) => [p.name, p.containerPort]))
      expect(ports.get("http"), d.metadata.name).toBe(HTTP_PORT)
      expect(ports.get("runner"), d.metadata.name).toBe(runnerPort)
      expect(Number(env[envOf("server.port")] ?? HTTP_PORT), d.metadata.name).toBe(HTTP_PORT)
      expect(Number(env[envOf("cluster.runner_port")] ?? runnerPort), d.metadata.name).toBe(runnerPort)
    }
  })

  it("probes /health for startup and liveness and /ready for readiness, on the http port", () => {
    const onHttp = (probe: Json, path: string, where: string) => {
      expect(probe?.httpGet?.path, where).toBe(path)
      expect([ "http", HTTP_PORT ], where).toContain(probe.httpGet.port)
    }
    for (const d of deployments) {
      const c = container(d)
      onHttp(c.livenessProbe, "/health", `${d.metadata.name} liveness`)
      onHttp(c.readinessProbe, "/ready", `${d.metadata.name} readiness`)
      onHttp(c.startupProbe, "/health", `${d.metadata.name} startup`)
    }
  })

  it("gives SIGTERM draining (plus any preStop sleep) less than terminationGracePeriodSeconds", () => {
    for (const d of deployments) {
      const command: ReadonlyArray<string> = container(d).lifecycle?.preStop?.exec?.command ?? []
      const preStopMs = command[0] === "sleep" ? Number(command[1]) * 1000 : 0
      expect(d.spec.template.spec.terminationGracePeriodSeconds * 1000, d.metadata.name).toBeGreaterThan(
        drainMs + preStopMs
      )
    }
  })

  it("runs the kustomization's image as a non-root user", () => {
    const imageNames = new Set((kustomization.images ?? []).map((i: Json) => i.name))
    for (const d of deployments) {
      expect(imageNames.has(String(container(d).image).split(":")[0]), d.metadata.name).toBe(true)
      expect(d.spec.template.spec.securityContext?.runAsNonRoot, d.metadata.name).toBe(true)
    }
  })

  it("exposes only the gateways to clients on the HTTP port, and the runners headlessly on the runner port", () => {
    const services = ofKind("Service")
    const podLabels = (name: string): Record<string, string> =>
      deployments.find((d) => d.metadata.name === name)!.spec.template.metadata.labels
    const external = services.filter((s) => s.spec.clusterIP !== "None")
    expect(external.map((s) => s.metadata.name)).toEqual(["tessera-gateway"])
    const gateway = external[0]
    expect(["LoadBalancer", "NodePort"]).toContain(gateway.spec.type)
    expect(gateway.spec.ports.map((p: Json) => p.port)).toEqual([HTTP_PORT])
    for (const d of deployments) {
      expect(labelsMatch(gateway.spec.selector, podLabels(d.metadata.name)), d.metadata.name).toBe(
        d.metadata.name === `tessera-${dnsName("gateway")}`
      )
    }
    const headless = services.filter((s) => s.spec.clusterIP === "None")
    expect(headless).toHaveLength(1)
    expect(headless[0].spec.ports.map((p: Json) => p.port)).toEqual([runnerPort])
    for (const d of deployments) expect(labelsMatch(headless[0].spec.selector, podLabels(d.metadata.name))).toBe(true)
  })

  it("autoscales gateway and region on CPU and on a per-pod Tessera gauge", () => {
    const hpas = ofKind("HorizontalPodAutoscaler")
    const exported = Metrics.renderPrometheus()
    const targets = hpas.map((h) => h.spec.scaleTargetRef.name).sort()
    expect(targets).toEqual([`tessera-${dnsName("gateway")}`, `tessera-${dnsName("region")}`])
    for (const h of hpas) {
      const target = deployments.find((d) => d.metadata.name === h.spec.scaleTargetRef.name)
      expect(target, `${h.metadata.name} targets a Deployment in the kustomization`).toBeDefined()
      expect(h.spec.scaleTargetRef.kind).toBe("Deployment")
      expect(target.spec.replicas, `${target.metadata.name}: replicas left to the HPA`).toBeUndefined()
      const metrics: ReadonlyArray<Json> = h.spec.metrics
      expect(metrics.some((m) => m.type === "Resource" && m.resource.name === "cpu"), h.metadata.name).toBe(true)
      const pods = metrics.filter((m) => m.type === "Pods")
      expect(pods, h.metadata.name).toHaveLength(1)
      const metric = pods[0].pods.metric.name
      expect(exported, `${metric} is a gauge on /metrics`).toContain(`# TYPE ${metric} gauge`)
    }
    const region = hpas.find((h) => h.spec.scaleTargetRef.name === `tessera-${dnsName("region")}`)
    expect(region.spec.metrics.find((m: Json) => m.type === "Pods").pods.metric.name).toBe("tessera_players")
  })

  it("each Deployment has exactly one PodDisruptionBudget selecting its pods", () => {
    const pdbs = ofKind("PodDisruptionBudget")
    for (const d of deployments) {
      const labels = d.spec.template.metadata.labels
      const matching = pdbs.filter((p) => labelsMatch(p.spec.selector?.matchLabels, labels))
      expect(matching, d.metadata.name).toHaveLength(1)
    }
    expect(pdbs).toHaveLength(deployments.length)
  })

  it("lets clients reach only the gateways, runners reach each other, and everyone reach PostgreSQL and Redis", () => {
    const policies = ofKind("NetworkPolicy")
    const portsOf = (rules: ReadonlyArray<Json> | undefined): ReadonlyArray<number> =>
      (rules ?? []).flatMap((r) => (r.ports ?? []).map((p: Json) => p.port))
    // A default deny for every Tessera pod.
    expect(
      policies.some(
        (p) => p.spec.ingress === undefined && p.spec.egress === undefined && p.spec.policyTypes.length === 2
      )
    ).toBe(true)
    for (const d of deployments) {
      const labels = d.spec.template.metadata.labels
      const applying = policies.filter((p) => labelsMatch(p.spec.podSelector.matchLabels, labels))
      // Ingress open to any source only on the HTTP port, and only for gateways.
      const openIngress = applying.flatMap((p) => (p.spec.ingress ?? []).filter((r: Json) => r.from === undefined))
      expect(portsOf(openIngress), d.metadata.name).toEqual(
        d.metadata.name === `tessera-${dnsName("gateway")}` ? [HTTP_PORT] : []
      )
      const ingress = applying.flatMap((p) => p.spec.ingress ?? [])
      const egress = applying.flatMap((p) => p.spec.egress ?? [])
      expect(portsOf(ingress), d.metadata.name).toContain(runnerPort)
      expect(portsOf(egress), d.metadata.name).toEqual(expect.arrayContaining([runnerPort, 5432, 6379, 53]))
    }
  })
})

// ---------------------------------------------------------------------------------------------
// systemd (the board unit)

describe("deploy/systemd/tessera.service", () => {
  const unit = read("deploy/systemd/tessera.service")
  it("runs the bundle's serve command and waits longer than the drain", () => {
    expect(unit).toMatch(/^ExecStart=.*\bdist\/tessera\.mjs serve\b/m)
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m)
    const stop = /^TimeoutStopSec=(\d+)$/m.exec(unit)
    expect(stop).not.toBeNull()
    expect(Number(stop![1]) * 1000).toBeGreaterThan(SHUTDOWN_MS_DEFAULT)
  })
})
