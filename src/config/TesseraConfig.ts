/**
 * The resolved configuration every module reads. Keys here are camelCase;
 * the TOML file and TESSERA_* env vars use the snake_case form of the same
 * path (server.shutdownTimeoutMs <-> [server] shutdown_timeout_ms <->
 * TESSERA_SERVER_SHUTDOWN_TIMEOUT_MS). Defaults and descriptions live in
 * ConfigSchema.ts, the one place that defines every key.
 */
export interface ExperienceConfig {
  readonly id: string
  readonly name: string
  readonly tickRate: number
  readonly maxPlayers: number
  /** "instanced": matches/rooms of one region each; "open": one persistent world of meshed regions. */
  readonly world: "instanced" | "open"
  // Server meshing (world = "open"); lengths in metres. See OpenWorld.ts.
  /** Side of a root region cube. */
  readonly regionSize: number
  /** Side of the smallest region: regionSize / 2^k. */
  readonly minRegionSize: number
  /** Width of the zone on each side of a region boundary that both regions see. */
  readonly overlap: number
  /** How far past a boundary an entity must move before authority transfers. */
  readonly hysteresis: number
  /** A region with more players than this splits into 8. */
  readonly splitPlayers: number
  /** 8 sibling regions with fewer players than this in total merge back. */
  readonly mergePlayers: number
  /** A region whose tick p99 exceeds this splits, in ms. */
  readonly tickBudgetMs: number
  /** Least time between two splits or merges of the same region, in seconds. */
  readonly meshCooldownSeconds: number
  /** Root region cubes along x, y and z. */
  readonly regionsX: number
  readonly regionsY: number
  readonly regionsZ: number
}

export interface TesseraConfig {
  readonly server: {
    readonly host: string
    readonly port: number
    readonly roles: ReadonlyArray<string>
    readonly dev: boolean
    readonly shutdownTimeoutMs: number
    readonly logLevel: "trace" | "debug" | "info" | "warning" | "error" | "none"
  }
  readonly storage: {
    readonly backend: "sqlite" | "postgres"
    readonly dataDir: string
    readonly postgresUrl: string
    readonly writeBehindMs: number
  }
  readonly redis: {
    readonly enabled: boolean
    readonly url: string
    readonly prefix: string
  }
  readonly auth: {
    readonly secret: string
    readonly tokenTtlSeconds: number
  }
  readonly gateway: {
    readonly maxPayloadBytes: number
    readonly maxBackpressureBytes: number
    readonly messagesPerSecond: number
    readonly messageBurst: number
    readonly maxBadMessages: number
    readonly idleTimeoutSeconds: number
    readonly authPerMinutePerIp: number
  }
  readonly session: {
    readonly resumeWindowSeconds: number
  }
  readonly region: {
    readonly cellSize: number
    readonly interestRadius: number
    readonly maxSpeed: number
    readonly worldHalfExtent: number
    readonly spawnRadius: number
  }
  readonly scheduler: {
    readonly emptyInstanceGraceSeconds: number
    readonly maxInstances: number
  }
  readonly admin: {
    /** Empty: the admin API is disabled. */
    readonly key: string
    readonly eventHistory: number
  }
  readonly chat: {
    readonly historySize: number
    readonly maxLength: number
    readonly messagesPerSecond: number
    readonly burst: number
    readonly bannedWords: ReadonlyArray<string>
  }
  readonly cluster: {
    readonly transport: "single" | "socket"
    readonly runnerHost: string
    readonly runnerPort: number
    readonly runnerListenHost: string
    readonly shardLockRefreshMs: number
    readonly shardLockExpirationMs: number
    readonly refreshAssignmentsMs: number
    readonly runnerHealthCheckMs: number
    readonly entityMessagePollMs: number
    readonly shardsPerGroup: number
    readonly simulateRemoteSerialization: boolean
    readonly entityMaxIdleSeconds: number
  }
  readonly experiences: ReadonlyArray<ExperienceConfig>
}
