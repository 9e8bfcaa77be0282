import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

const ROOT = Path.resolve(import.meta.dirname, "../..")

/** A free loopback port (bound once by the OS, then released for the server). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as Net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

/** One unlabelled sample of a Prometheus text exposition (NaN when absent). */
export const metricValue = (text: string, name: string): number =>
  Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN)

export const tempDir = (prefix: string): string => Fs.mkdtempSync(Path.join(Os.tmpdir(), `tessera-${prefix}-`))

export interface ServerOptions {
  /** TOML text written to a temp file and passed with --config. */
  readonly toml?: string
  readonly dataDir?: string
  readonly port?: number
  readonly env?: Record<string, string>
  readonly args?: ReadonlyArray<string>
  /** Wait for /ready 200 before returning (default true). */
  readonly waitReady?: boolean
}

/**
 * The real `tessera serve` binary (dist/tessera.mjs, built by the global
 * setup) in a child process on a loopback port, started the way `npm start`
 * starts it. Only this pid is ever signalled.
 */
export class ServerProcess {
  output = ""
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly dataDir: string
  ) {
    child.stdout?.on("data", (d: Buffer) => (this.output += d.toString()))
    child.stderr?.on("data", (d: Buffer) => (this.output += d.toString()))
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
  }

  get pid(): number {
    return this.child.pid!
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`
  }

  static async start(options: ServerOptions = {}): Promise<ServerProcess> {
    const port = options.port ?? (await freePort())
    const dataDir = options.dataDir ?? tempDir("data")
    const args = [Path.join(ROOT, "dist/tessera.mjs"), "serve", "--port", String(port), "--data-dir", dataDir]
    if (options.toml !== undefined) {
      const file = Path.join(tempDir("config"), "tessera.toml")
      Fs.writeFileSync(file, options.toml)
      args.push("--config", file)
    }
    args.push(...(options.args ?? []))
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const server = new ServerProcess(child, port, dataDir)
    if (options.waitReady !== false) await server.waitReady()
    return server
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let exited = false
    void this.exited.then(() => (exited = true))
    while (Date.now() < deadline) {
      if (exited) throw new Error(`server exited before it was ready:\n${this.output}`)
      try {
        const res = await fetch(`${this.httpUrl}/ready`)
        if (res.status === 200) return
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`server not ready after ${timeoutMs} ms:\n${this.output}`)
  }

  /** The current value of one unlabelled metric from GET /metrics (NaN when absent). */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(`${this.httpUrl}/metrics`)).text()
    return metricValue(text, name)
  }

  /** Waits for the process to exit by itself (rejects after `timeoutMs`). */
  async waitExit(timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`server did not exit within ${timeoutMs} ms:\n${this.output}`)), timeoutMs)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Sends a signal and waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited
    this.child.kill(signal)
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs)
    const result = await this.exited
    clearTimeout(timer)
    return result
  }
}
