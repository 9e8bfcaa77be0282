import { ServerProcess, freePort, tempDir, type ServerOptions } from "./ServerProcess.js"
import { testToml } from "./testConfig.js"
import { execFileSync } from "node:child_process"

/** A fresh PostgreSQL database for one test (dropped by `drop`), on the local server. */
export const createDatabase = (): { readonly url: string; readonly drop: () => void } => {
  const name = `tessera_t_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const psql = (sql: string) =>
    execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-c", sql], { stdio: "pipe" })
  psql(`CREATE DATABASE ${name}`)
  return {
    url: `postgres://postgres@127.0.0.1:5432/${name}`,
    drop: () => {
      try {
        psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } catch {
        // best effort: a leftover test database does no harm
      }
    }
  }
}

export interface ClusterNode {
  readonly roles: string
  readonly server: ServerProcess
}

/**
 * Several real `tessera serve` processes forming one cluster over socket
 * runners, a shared PostgreSQL database and Redis, each with its own roles.
 */
export const startCluster = async (
  roleSets: ReadonlyArray<string>,
  options: { readonly toml?: string; readonly env?: Record<string, string> } = {}
): Promise<{
  readonly nodes: Array<ClusterNode>
  readonly stop: () => Promise<void>
  readonly databaseUrl: string
  /** Starts one more runner in the same cluster. */
  readonly addNode: (roles: string) => Promise<ClusterNode>
}> => {
  const database = createDatabase()
  // Each cluster gets its own Redis key and channel prefix.
  const redisPrefix = `tessera-test:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`
  const nodes: Array<ClusterNode> = []
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.server.stop()))
    database.drop()
  }
  const addNode = async (roles: string): Promise<ClusterNode> => {
    const runnerPort = await freePort()
    const serverOptions: ServerOptions = {
      toml: options.toml ?? testToml(),
      dataDir: tempDir("node"),
      args: ["--roles", roles],
      env: {
        TESSERA_STORAGE_BACKEND: "postgres",
        TESSERA_STORAGE_POSTGRES_URL: database.url,
        TESSERA_CLUSTER_TRANSPORT: "socket",
        TESSERA_CLUSTER_RUNNER_PORT: String(runnerPort),
        TESSERA_CLUSTER_RUNNER_LISTEN_HOST: "127.0.0.1",
        TESSERA_REDIS_ENABLED: "true",
        TESSERA_REDIS_URL: "redis://127.0.0.1:6379",
        TESSERA_REDIS_PREFIX: redisPrefix,
        ...options.env
      }
    }
    const server = await ServerProcess.start(serverOptions)
    const node = { roles, server }
    nodes.push(node)
    return node
  }
  try {
    await Promise.all(roleSets.map(addNode))
    return { nodes, stop, databaseUrl: database.url, addNode }
  } catch (error) {
    await stop()
    throw error
  }
}

/** A runner's cluster address (host:port), from its `tessera_runner_info{address="host:port"} 1`. */
export const runnerAddress = async (server: ServerProcess): Promise<string> => {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text()
  const address = /^tessera_runner_info\{address="([^"]+)"\} 1$/m.exec(text)?.[1]
  if (address === undefined) throw new Error("no tessera_runner_info on /metrics")
  return address
}

/** Of two region runners, the one hosting the (single) active region and the other, waiting up to `timeoutMs`. */
export const regionHost = async (
  [first, second]: ReadonlyArray<ClusterNode>,
  timeoutMs = 10_000
): Promise<{ readonly host: ClusterNode; readonly spare: ClusterNode }> => {
  if (first === undefined || second === undefined) throw new Error("two region runners expected")
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    if ((await first.server.metric("tessera_regions")) > 0) return { host: first, spare: second }
    if ((await second.server.metric("tessera_regions")) > 0) return { host: second, spare: first }
  }
  throw new Error("no region runner hosts the region")
}
