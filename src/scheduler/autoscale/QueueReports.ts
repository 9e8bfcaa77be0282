/**
 * Players waiting for a place, per experience, as reported by their queues
 * (ReportQueue): each source (a matchmaking queue) reports its own count; the
 * experience's queue is the sum of its sources' latest reports that are
 * younger than the TTL (a source that stopped reporting, e.g. its entity
 * died, stops counting). Pure data; the scheduler owns one.
 */
export class QueueReports {
  private readonly byExperience = new Map<string, Map<string, { readonly queued: number; readonly at: number }>>()

  constructor(private readonly ttlMs: number) {}

  /** Records a report (negative or non-finite counts count as 0; `source` absent: the anonymous source ""). */
  report(experienceId: string, queued: number, now: number, source = ""): void {
    let sources = this.byExperience.get(experienceId)
    if (sources === undefined) this.byExperience.set(experienceId, (sources = new Map()))
    sources.set(source, { queued: Number.isFinite(queued) ? Math.max(0, Math.floor(queued)) : 0, at: now })
  }

  /** The experience's queued players at `now` (expired reports are dropped as they are found). */
  queued(experienceId: string, now: number): number {
    const sources = this.byExperience.get(experienceId)
    if (sources === undefined) return 0
    let sum = 0
    for (const [source, r] of sources) {
      if (now - r.at > this.ttlMs) sources.delete(source)
      else sum += r.queued
    }
    if (sources.size === 0) this.byExperience.delete(experienceId)
    return sum
  }
}
