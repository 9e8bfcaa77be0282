import WebSocket from "ws"
import { TesseraClient, type TesseraClientOptions } from "../../src/client/TesseraClient.js"
import type { ServerProcess } from "./ServerProcess.js"

/** Polls `check` until it returns a value other than undefined/false. */
export const waitFor = async <A>(
  what: string,
  check: () => A | undefined | false,
  timeoutMs = 10_000
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const value = check()
    if (value !== undefined && value !== false) return value
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls an async `check` every 100 ms until it returns true. */
export const waitForAsync = async (what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> => {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    if (await check()) return
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/** A guest client of the real SDK over the real `ws` WebSocket, connected (Welcome received). */
export const connectGuest = async (
  server: ServerProcess,
  deviceId: string,
  options: TesseraClientOptions = {}
): Promise<TesseraClient> => {
  const client = await TesseraClient.guest(server.httpUrl, { deviceId, name: deviceId.replace(/[^\w.-]/g, "_").slice(0, 32) }, {
    WebSocket: WebSocket as never,
    webSocketOptions: { perMessageDeflate: false },
    pingIntervalMs: 0,
    ...options
  })
  try {
    await client.connect()
  } catch (error) {
    // A rare abnormal close (1006) of the very first connection to a just-started server shows up
    // in the lifecycle tests only (not reproduced in isolation; see the issue note). A real client
    // retries; so does this one, once, and says so.
    process.stderr.write(`connectGuest(${deviceId}): first connect failed (${String(error)}); retrying once\n`)
    await sleep(200)
    await client.connect()
  }
  return client
}

/** Sends `count` inputs at the client's tick rate in direction (dx, dy, dz). */
export const walk = async (client: TesseraClient, dx: number, dy: number, dz: number, count: number) => {
  let seq = 0
  for (let i = 0; i < count; i++) {
    seq = client.sendInput(dx, dy, dz)
    await sleep(50)
  }
  return seq
}

/**
 * Keeps a standing player sending one still input per poll until its region acks them again
 * (after a failover, hand-over or drain): resolves with the time it did. `since` is the last
 * seq acked before the interruption.
 */
export const acksResumed = (client: TesseraClient, since: number, what: string, timeoutMs = 20_000): Promise<number> =>
  waitFor(what, () => {
    const seq = client.sendInput(0, 0, 0)
    return client.lastAckedSeq >= seq - 1 && client.lastAckedSeq > since ? Date.now() : undefined
  }, timeoutMs)
