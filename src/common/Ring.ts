/**
 * A FIFO of at most `capacity` entries that overwrites its oldest entry when
 * full: O(1) push, no shifting, no allocation per entry. Bounded buffers
 * (write-behind queues, event histories) drop their oldest entries this way.
 */
export class Ring<A> {
  private readonly items: Array<A | undefined>
  private head = 0
  size = 0
  constructor(readonly capacity: number) {
    this.items = new Array<A | undefined>(capacity)
  }
  /** Appends `item`; returns true if the oldest entry was overwritten to make room. */
  push(item: A): boolean {
    const tail = (this.head + this.size) % this.capacity
    this.items[tail] = item
    if (this.size < this.capacity) {
      this.size++
      return false
    }
    this.head = (this.head + 1) % this.capacity
    return true
  }
  /** The newest `n` entries (at most size), oldest first. */
  last(n: number): Array<A> {
    const count = Math.max(0, Math.min(n, this.size))
    const out = new Array<A>(count)
    const start = this.head + this.size - count
    for (let i = 0; i < count; i++) out[i] = this.items[(start + i) % this.capacity]!
    return out
  }
  /** Removes and returns every entry, oldest first. */
  drain(): Array<A> {
    const out = this.last(this.size)
    this.items.fill(undefined)
    this.head = 0
    this.size = 0
    return out
  }
}
