/**
 * The resolved configuration every module reads. Keys here are camelCase;
 * the TOML file and TESSERA_* env vars use the snake_case form of the same
 * path (server.shutdownTimeoutMs <-> [server] shutdown_timeout_ms <->
 * TESSERA_SERVER_SHUTDOWN_TIMEOUT_MS). Defaults and descriptions live in
 * ConfigSchema.ts, the one place that defines every key.
 */
/**
 * An experience's autoscaling policy (`[experiences.scaling]`), mapped to
 * scheduler/autoscale/ScalingPolicy.ts by the scheduler. 0 in
 * targetPlayersPerInstance / maxInstances means "derive it" (see ConfigSchema.ts).
 */
export interface ExperienceScalingConfig {
  readonly enabled: boolean
  readonly minInstances: number
  readonly maxInstances: number
  readonly targetPlayersPerInstance: number
  readonly scaleUpThreshold: number
  readonly scaleDownThreshold: number
  readonly targetCpu: number
  readonly targetTickMs: number
  readonly bufferInstances: number
  readonly scaleUpCooldownSeconds: number
  readonly scaleDownCooldownSeconds: number
  readonly maxStep: number
}

/** An experience's hard limits (`[experiences.quota]`); 0 = no limit of its own. */
export interface ExperienceQuotaConfig {
  readonly maxInstances: number
  readonly maxPlayers: number
}

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
  /** Autoscaling of the experience's instances (instanced worlds). */
  readonly scaling: ExperienceScalingConfig
  /** Limits one experience's load can never exceed, whatever the others do. */
  readonly quota: ExperienceQuotaConfig
}

/** One matchmaking queue: a mode of an instanced experience (`[[matchmaking.modes]]`). */
export interface MatchmakingModeConfig {
  /** Id of the (instanced) experience the matches are played in. */
  readonly experience: string
  /** Name of the mode ("squads", "ranked"...); one queue per (experience, mode). */
  readonly mode: string
  readonly matchSize: number
  /** Smallest match started once the skill window stops growing; 0 = always full matches. */
  readonly minPlayers: number
  readonly initialSkillWindow: number
  readonly skillWindowGrowthPerSecond: number
  readonly maxSkillWindow: number
  readonly ticketTimeoutSeconds: number
  /** 0 = no ready check. */
  readonly readyCheckSeconds: number
  readonly maxLatencyMs: number
  /** Fill free slots of this mode's running matches with queued parties. */
  readonly backfill: boolean
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
    /** Open worlds: farthest a player may edit the world from (metres), inside its own region only. */
    readonly editReach: number
  }
  readonly scheduler: {
    readonly emptyInstanceGraceSeconds: number
    readonly maxInstances: number
    readonly actuator: "local" | "nomad" | "kubernetes"
    readonly scalingIntervalMs: number
    readonly stateSaveIntervalMs: number
    readonly nomadAddress: string
    readonly nomadToken: string
    readonly nomadNamespace: string
    readonly nomadJob: string
    readonly nomadGroup: string
    readonly nomadTimeoutMs: number
    readonly nomadRetries: number
    readonly nomadRetryBaseMs: number
  }
  readonly health: {
    readonly enabled: boolean
    readonly heartbeatIntervalMs: number
    readonly missedHeartbeats: number
    readonly unhealthyThreshold: number
    readonly healthyThreshold: number
    readonly maxTickMs: number
    readonly maxCpu: number
    readonly maxMemoryMb: number
    /** Runners' event-loop delay p99 limit, in ms; 0: none. */
    readonly maxEventLoopLagMs: number
    /** Drain a runner that becomes unhealthy (through the admin drain's path). */
    readonly drainUnhealthyRunners: boolean
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
  readonly matchmaking: {
    readonly regions: ReadonlyArray<string>
    readonly tickMs: number
    readonly modes: ReadonlyArray<MatchmakingModeConfig>
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
