import {
  axisIndex,
  type Box,
  boundsOf,
  cellsPerAxis,
  childrenOf,
  clampCoord,
  compareKeys,
  expand,
  intersects,
  isValidKey,
  keyString,
  maxLevel,
  type MeshGeometry,
  parentOf,
  parseKeyString,
  parseRegionId,
  type RegionKey,
  regionIdOf,
  sizeAt,
  validateGeometry,
  type Vec3,
  worldBox
} from "./MeshGeometry.js"

/** The serialised partition of one world (what the scheduler persists and hands to gateways). */
export interface RegionDirectoryJson {
  readonly worldId: string
  readonly version: number
  readonly leaves: ReadonlyArray<string>
}

interface Leaf {
  readonly key: RegionKey
  readonly box: Box
  readonly id: string
}

const rootKeys = (g: MeshGeometry): Array<RegionKey> => {
  const out: Array<RegionKey> = []
  for (let x = 0; x < g.rootsX; x++) {
    for (let y = 0; y < g.rootsY; y++) {
      for (let z = 0; z < g.rootsZ; z++) out.push({ level: 0, x, y, z })
    }
  }
  return out
}

/**
 * Why `keys` is not an exact partition of the world (no overlap, no gap), or
 * undefined when it is. Aligned octree cells either nest or are disjoint, so
 * "no key is another's ancestor" rules out overlap; a walk down from the roots
 * through the ancestors of the keys finds any gap.
 */
export const partitionError = (g: MeshGeometry, keys: Iterable<RegionKey>): string | undefined => {
  const leaves = new Set<string>()
  const inner = new Set<string>()
  const all: Array<RegionKey> = []
  for (const key of keys) {
    if (!isValidKey(g, key)) return `region ${JSON.stringify(key)} is not a cell of this world`
    const k = keyString(key)
    if (leaves.has(k)) return `region ${k} is listed twice`
    leaves.add(k)
    all.push(key)
  }
  for (const key of all) {
    for (let a = parentOf(key); a !== undefined; a = parentOf(a)) {
      const k = keyString(a)
      if (leaves.has(k)) return `regions ${k} and ${keyString(key)} overlap (one contains the other)`
      inner.add(k)
    }
  }
  // Each step visits a leaf, an ancestor of a leaf, or stops at the first gap: O(leaves * depth).
  const stack = rootKeys(g)
  for (let key = stack.pop(); key !== undefined; key = stack.pop()) {
    const k = keyString(key)
    if (leaves.has(k)) continue
    if (!inner.has(k)) return `region ${k} is not covered by any leaf (gap)`
    stack.push(...childrenOf(key))
  }
  return undefined
}

/** Cells per axis a level may have for the packed numeric key (14 bits each, level above: < 2^47). */
const AXIS_LIMIT = 16384

const packKey = (level: number, x: number, y: number, z: number): number =>
  ((level * AXIS_LIMIT + x) * AXIS_LIMIT + y) * AXIS_LIMIT + z

/**
 * Which region is authoritative for a point: the current partition of one
 * open world into leaf regions. Mutated only by split and merge; every change
 * bumps `version`, so a copy held elsewhere (a gateway, a region) can tell it
 * is stale.
 */
export class RegionDirectory {
  readonly geometry: MeshGeometry
  readonly worldId: string
  private readonly world: Box
  private readonly depth: number
  private readonly sizes: ReadonlyArray<number>
  private readonly counts: ReadonlyArray<{ readonly x: number; readonly y: number; readonly z: number }>
  private readonly byKey = new Map<string, Leaf>()
  /** The same leaves by packed numeric key and by region id: the per-entity lookups allocate nothing. */
  private readonly byNum = new Map<number, Leaf>()
  private readonly byId = new Map<string, Leaf>()
  /** Scratch for the per-entity queries (single-threaded; never retained past a call). */
  private readonly scratchQ = { x: 0, y: 0, z: 0 }
  private readonly scratchLeaves: Array<Leaf> = []
  private sorted: ReadonlyArray<Leaf> | undefined
  private currentVersion: number

  constructor(geometry: MeshGeometry, worldId: string, leaves?: Iterable<RegionKey>, version = 0) {
    const bad = validateGeometry(geometry)
    if (bad !== undefined) throw new Error(bad)
    if (worldId.length === 0 || worldId.includes("/")) {
      throw new Error(`world id must be non-empty and contain no "/", got ${JSON.stringify(worldId)}`)
    }
    if (!(Number.isSafeInteger(version) && version >= 0)) {
      throw new Error(`directory version must be an integer >= 0, got ${version}`)
    }
    this.geometry = geometry
    this.worldId = worldId
    this.world = worldBox(geometry)
    this.depth = maxLevel(geometry)
    const sizes: Array<number> = []
    const counts: Array<{ x: number; y: number; z: number }> = []
    for (let l = 0; l <= this.depth; l++) {
      sizes.push(sizeAt(geometry, l))
      counts.push(cellsPerAxis(geometry, l))
    }
    this.sizes = sizes
    this.counts = counts
    for (const n of counts) {
      if (n.x > AXIS_LIMIT || n.y > AXIS_LIMIT || n.z > AXIS_LIMIT) {
        throw new Error(`world ${worldId}: more than ${AXIS_LIMIT} cells per axis at the smallest region size`)
      }
    }
    const keys = leaves === undefined ? rootKeys(geometry) : [...leaves]
    const err = partitionError(geometry, keys)
    if (err !== undefined) throw new Error(`world ${worldId}: leaves are not a partition of the world: ${err}`)
    for (const key of keys) this.add(key)
    this.currentVersion = version
  }

  get version(): number {
    return this.currentVersion
  }

  /** Number of leaf regions. */
  get size(): number {
    return this.byKey.size
  }

  /** The leaves in canonical order (coarse levels first, then x, y, z). */
  leaves(): ReadonlyArray<RegionKey> {
    return this.sortedLeaves().map((l) => l.key)
  }

  /** Region ids of the leaves, in the order of `leaves()`. */
  leafIds(): ReadonlyArray<string> {
    return this.sortedLeaves().map((l) => l.id)
  }

  idOf(key: RegionKey): string {
    return regionIdOf(this.worldId, key)
  }

  isLeaf(key: RegionKey): boolean {
    return this.byKey.has(keyString(key))
  }

  /** True when regionId names a current leaf of this world. */
  has(regionId: string): boolean {
    const parsed = parseRegionId(regionId)
    return parsed !== undefined && parsed.worldId === this.worldId && this.isLeaf(parsed.key)
  }

  /** The leaf containing p (clamped into the world): one Set probe per level. */
  locate(p: Vec3): RegionKey {
    return this.locateLeaf(this.clampInto(p, this.scratchQ)).key
  }

  locateId(p: Vec3): string {
    return this.locateLeaf(this.clampInto(p, this.scratchQ)).id
  }

  /** Leaf and larger than the minimum size. */
  canSplit(key: RegionKey): boolean {
    return this.splitBlocker(key) === undefined
  }

  /** Replaces the leaf by its 8 children (returned in childrenOf order). */
  split(key: RegionKey): ReadonlyArray<RegionKey> {
    const blocker = this.splitBlocker(key)
    if (blocker !== undefined) throw new Error(`cannot split region ${this.idOf(key)}: ${blocker}`)
    this.remove(key)
    const children = childrenOf(key)
    for (const child of children) this.add(child)
    this.changed()
    return children
  }

  /** All 8 children of `parent` are leaves. */
  canMerge(parent: RegionKey): boolean {
    return this.mergeBlocker(parent) === undefined
  }

  /** Replaces the 8 children by the parent; returns the children removed. */
  merge(parent: RegionKey): ReadonlyArray<RegionKey> {
    const blocker = this.mergeBlocker(parent)
    if (blocker !== undefined) throw new Error(`cannot merge into region ${this.idOf(parent)}: ${blocker}`)
    const children = childrenOf(parent)
    for (const child of children) this.remove(child)
    this.add(parent)
    this.changed()
    return children
  }

  /** Other leaves whose box shares volume with `key`'s box grown by the overlap (faces, edges and corners). */
  neighboursOf(key: RegionKey): ReadonlyArray<RegionKey> {
    const zone = expand(boundsOf(this.geometry, key), this.geometry.overlap)
    const k = keyString(key)
    const out: Array<RegionKey> = []
    for (const leaf of this.sortedLeaves()) {
      if (keyString(leaf.key) === k) continue
      if (intersects(leaf.box, zone)) out.push(leaf.key)
    }
    return out
  }

  /**
   * Leaves other than `owner` whose box grown by the overlap contains p (half-open,
   * like `contains`): where an entity at p must be replicated as a ghost. Runs per
   * entity, so it probes only the 8 corners of the overlap cube around p — every
   * such leaf holds one of them, because overlap < minSize/2.
   */
  ghostTargets(p: Vec3, owner: RegionKey): ReadonlyArray<RegionKey> {
    const found = this.collectGhostLeaves(p, this.byKey.get(keyString(owner)))
    return found.map((leaf) => leaf.key).sort(compareKeys)
  }

  /**
   * `ghostTargets` for the tick's hot path: the region ids, in no particular
   * order, written into `out` (cleared first); the owner is given by its id.
   */
  ghostTargetIds(p: Vec3, ownerId: string, out: Array<string>): void {
    out.length = 0
    for (const leaf of this.collectGhostLeaves(p, this.byId.get(ownerId))) out.push(leaf.id)
  }

  /** The leaves of ghostTargets, in the reused scratch array (valid until the next call). */
  private collectGhostLeaves(p: Vec3, ownerLeaf: Leaf | undefined): ReadonlyArray<Leaf> {
    const found = this.scratchLeaves
    found.length = 0
    const q = this.clampInto(p, this.scratchQ)
    const o = this.geometry.overlap
    if (ownerLeaf !== undefined) {
      const b = ownerLeaf.box
      // Deep inside its own region (the common case): nothing to replicate.
      if (
        q.x - o >= b.minX && q.x + o < b.maxX &&
        q.y - o >= b.minY && q.y + o < b.maxY &&
        q.z - o >= b.minZ && q.z + o < b.maxZ
      ) return found
    }
    const w = this.world
    const corner = { x: 0, y: 0, z: 0 }
    for (let i = 0; i < 8; i++) {
      corner.x = clampCoord((i & 1) === 0 ? q.x - o : q.x + o, w.minX, w.maxX)
      corner.y = clampCoord((i & 2) === 0 ? q.y - o : q.y + o, w.minY, w.maxY)
      corner.z = clampCoord((i & 4) === 0 ? q.z - o : q.z + o, w.minZ, w.maxZ)
      const leaf = this.locateLeaf(corner)
      if (leaf === ownerLeaf || found.includes(leaf)) continue
      // Only leaves whose box grown by the overlap holds p (half-open, like `contains`).
      const b = leaf.box
      if (
        q.x >= b.minX - o && q.x < b.maxX + o &&
        q.y >= b.minY - o && q.y < b.maxY + o &&
        q.z >= b.minZ - o && q.z < b.maxZ + o
      ) found.push(leaf)
    }
    return found
  }

  /**
   * The handoff decision with hysteresis: undefined while p is inside owner's box expanded by geometry.hysteresis;
   * otherwise the leaf that contains p. So an entity walking along a boundary does not flap.
   *
   * The hysteresis box is closed (a point exactly `hysteresis` past the face stays). When `owner` is no
   * longer a leaf (it was split or merged away) there is nothing to hold on to: the answer is the leaf
   * containing p.
   */
  handoffTarget(p: Vec3, owner: RegionKey): RegionKey | undefined {
    return this.handoffLeaf(p, this.byKey.get(keyString(owner)))?.key
  }

  /** `handoffTarget` for the tick's hot path: the target region's id, the owner given by its id. */
  handoffTargetId(p: Vec3, ownerId: string): string | undefined {
    return this.handoffLeaf(p, this.byId.get(ownerId))?.id
  }

  /** Whether a region id names a current leaf (no parsing, no allocation). */
  hasLeafId(regionId: string): boolean {
    return this.byId.has(regionId)
  }

  private handoffLeaf(p: Vec3, ownerLeaf: Leaf | undefined): Leaf | undefined {
    const q = this.clampInto(p, this.scratchQ)
    if (ownerLeaf !== undefined) {
      const b = ownerLeaf.box
      const h = this.geometry.hysteresis
      if (
        q.x >= b.minX - h && q.x <= b.maxX + h &&
        q.y >= b.minY - h && q.y <= b.maxY + h &&
        q.z >= b.minZ - h && q.z <= b.maxZ + h
      ) return undefined
    }
    const target = this.locateLeaf(q)
    return target === ownerLeaf ? undefined : target
  }

  toJSON(): { worldId: string; version: number; leaves: Array<string> } {
    return {
      worldId: this.worldId,
      version: this.currentVersion,
      leaves: this.sortedLeaves().map((l) => keyString(l.key))
    }
  }

  /** Rebuilds a directory; throws a clear Error on a malformed document or leaves that are not an exact partition. */
  static fromJSON(geometry: MeshGeometry, json: unknown): RegionDirectory {
    if (typeof json !== "object" || json === null) throw new Error("region directory: expected an object")
    const { worldId, version, leaves } = json as Record<string, unknown>
    if (typeof worldId !== "string") throw new Error("region directory: worldId must be a string")
    if (typeof version !== "number") throw new Error("region directory: version must be a number")
    if (!Array.isArray(leaves)) throw new Error("region directory: leaves must be an array of region keys")
    const keys: Array<RegionKey> = []
    for (const s of leaves as Array<unknown>) {
      const key = typeof s === "string" ? parseKeyString(s) : undefined
      if (key === undefined) throw new Error(`region directory: ${JSON.stringify(s)} is not a region key ("L/x/y/z")`)
      keys.push(key)
    }
    return new RegionDirectory(geometry, worldId, keys, version)
  }

  /** Active regions by level, every level from 0 to maxLevel present (a gauge must drop to 0). */
  levelCounts(): Record<number, number> {
    const out: Record<number, number> = {}
    for (let l = 0; l <= this.depth; l++) out[l] = 0
    for (const leaf of this.byKey.values()) out[leaf.key.level] = (out[leaf.key.level] ?? 0) + 1
    return out
  }

  private splitBlocker(key: RegionKey): string | undefined {
    if (!this.isLeaf(key)) return "it is not a leaf region"
    if (key.level >= this.depth) return `it is already at the minimum size (${this.geometry.minSize} m)`
    return undefined
  }

  private mergeBlocker(parent: RegionKey): string | undefined {
    if (!isValidKey(this.geometry, parent) || parent.level >= this.depth) return "it has no children in this world"
    for (const child of childrenOf(parent)) {
      if (!this.isLeaf(child)) return `child ${keyString(child)} is not a leaf`
    }
    return undefined
  }

  private add(key: RegionKey): void {
    const k: RegionKey = { level: key.level, x: key.x, y: key.y, z: key.z }
    const leaf: Leaf = { key: k, box: boundsOf(this.geometry, k), id: regionIdOf(this.worldId, k) }
    this.byKey.set(keyString(k), leaf)
    this.byNum.set(packKey(k.level, k.x, k.y, k.z), leaf)
    this.byId.set(leaf.id, leaf)
  }

  private remove(key: RegionKey): void {
    const leaf = this.byKey.get(keyString(key))
    if (leaf === undefined) return
    this.byKey.delete(keyString(key))
    this.byNum.delete(packKey(key.level, key.x, key.y, key.z))
    this.byId.delete(leaf.id)
  }

  /** p clamped into the world, written into `out` (no allocation). */
  private clampInto(p: Vec3, out: { x: number; y: number; z: number }): Vec3 {
    const w = this.world
    out.x = clampCoord(p.x, w.minX, w.maxX)
    out.y = clampCoord(p.y, w.minY, w.maxY)
    out.z = clampCoord(p.z, w.minZ, w.maxZ)
    return out
  }

  private changed(): void {
    this.sorted = undefined
    this.currentVersion++
  }

  private sortedLeaves(): ReadonlyArray<Leaf> {
    if (this.sorted === undefined) this.sorted = [...this.byKey.values()].sort((a, b) => compareKeys(a.key, b.key))
    return this.sorted
  }

  /** q must already be clamped into the world. */
  private locateLeaf(q: Vec3): Leaf {
    const w = this.world
    for (let l = 0; l <= this.depth; l++) {
      const s = this.sizes[l]!
      const n = this.counts[l]!
      const x = axisIndex(q.x, w.minX, s, n.x)
      const y = axisIndex(q.y, w.minY, s, n.y)
      const z = axisIndex(q.z, w.minZ, s, n.z)
      const leaf = this.byNum.get(packKey(l, x, y, z))
      if (leaf !== undefined) return leaf
    }
    // Unreachable while the partition invariant holds (checked on construction, kept by split/merge).
    throw new Error(`world ${this.worldId}: no region contains (${q.x}, ${q.y}, ${q.z})`)
  }
}
