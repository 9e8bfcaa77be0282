import * as Net from "node:net"
import { freePort } from "./ServerProcess.js"

/**
 * A loopback TCP proxy in front of a real service (PostgreSQL, Redis), so a
 * test can take the dependency away from one server process and give it
 * back without touching the shared service: `cut()` resets every open
 * connection and stops listening (new connects are refused), `restore()`
 * listens again on the same port.
 */
export class TcpProxy {
  private server: Net.Server | undefined
  private readonly sockets = new Set<Net.Socket>()

  private constructor(readonly port: number, private readonly target: { host: string; port: number }) {}

  static async start(target: { host: string; port: number }, options: { listening?: boolean } = {}): Promise<TcpProxy> {
    const proxy = new TcpProxy(await freePort(), target)
    if (options.listening !== false) await proxy.restore()
    return proxy
  }

  get listening(): boolean {
    return this.server !== undefined
  }

  /** Listens (again) and forwards every connection to the target. */
  restore(): Promise<void> {
    if (this.server !== undefined) return Promise.resolve()
    const server = Net.createServer((client) => {
      const upstream = Net.connect(this.target.port, this.target.host)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on("close", () => this.sockets.delete(s))
        s.on("error", () => {
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream)
      upstream.pipe(client)
    })
    this.server = server
    return new Promise((resolve, reject) => {
      server.once("error", reject)
      server.listen(this.port, "127.0.0.1", () => resolve())
    })
  }

  /** Refuses new connections and resets the open ones, as a dead host would. */
  cut(): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const s of this.sockets) s.resetAndDestroy()
    this.sockets.clear()
    if (server === undefined) return Promise.resolve()
    return new Promise((resolve) => server.close(() => resolve()))
  }
}
