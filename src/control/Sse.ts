import type { ControlEnvelope } from "./ControlEvent.js"

/**
 * Server-Sent Events framing of control events (text/event-stream), pure.
 *
 * A frame carries the envelope's seq as its `id`, so a reconnecting
 * EventSource sends it back as `Last-Event-ID` and the handler can resume
 * with `ControlEvents.subscribe(lastEventId)`; the event's `_tag` as its
 * `event` type (`source.addEventListener("HealthChanged", ...)`); and the
 * whole envelope as one line of JSON.
 */

/** Content-Type of an SSE response. */
export const contentType = "text/event-stream; charset=utf-8"

/**
 * `id: <seq>\nevent: <_tag>\ndata: <json>\n\n`. The JSON is the envelope
 * (its encoded form under ControlEnvelope is itself: every field is plain
 * JSON) on one line: JSON.stringify escapes every line break inside strings,
 * so `data` can never be split or end the frame early. Never throws.
 */
export const sseFrame = (envelope: ControlEnvelope): string =>
  `id: ${envelope.seq}\nevent: ${envelope.event._tag}\ndata: ${JSON.stringify(envelope)}\n\n`

/**
 * A comment frame (`: <text>\n\n`), ignored by EventSource: send one every
 * ~15 s so proxies and load balancers keep an idle stream open. Line breaks
 * in `text` are replaced by spaces so it stays one comment.
 */
export const sseComment = (text = "keep-alive"): string => `: ${text.replace(/[\r\n]+/g, " ")}\n\n`

/**
 * The `retry:` frame: how long (ms) EventSource waits before reconnecting
 * after the stream drops. Send it once at the start of a stream.
 */
export const sseRetry = (ms: number): string => `retry: ${Math.max(0, Math.floor(ms))}\n\n`

/**
 * Parses a `Last-Event-ID` header value into a seq to resume after; undefined
 * when absent or not a non-negative integer (then the stream starts live).
 */
export const parseLastEventId = (header: string | null | undefined): number | undefined => {
  if (header === null || header === undefined) return undefined
  const trimmed = header.trim()
  if (!/^\d{1,15}$/.test(trimmed)) return undefined
  return Number(trimmed)
}
