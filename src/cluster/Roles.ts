/**
 * The one list of roles. A role that hosts entities maps to a shard group;
 * `availableShardGroups` derives from this list so it is identical on every
 * runner (the cluster derives lock numbers from the sorted list).
 */
export const Role = {
  Gateway: "gateway",
  Region: "region",
  Session: "session",
  Scheduler: "scheduler",
  ExpertChat: "expert:chat",
  ExpertMatchmaking: "expert:matchmaking"
} as const
export type Role = (typeof Role)[keyof typeof Role]

export const ALL_ROLES: ReadonlyArray<Role> = Object.values(Role)

/** Roles whose entities live in a shard group named after the role. */
const ENTITY_ROLES: ReadonlyArray<Role> = [Role.Region, Role.Session, Role.Scheduler, Role.ExpertChat, Role.ExpertMatchmaking]

/** The cluster's own "default" group (runner health singleton) rides with the scheduler. */
export const DEFAULT_SHARD_GROUP = "default"

export const availableShardGroups: ReadonlyArray<string> = [DEFAULT_SHARD_GROUP, ...ENTITY_ROLES].sort()

export class RolesError extends Error {
  override readonly name = "RolesError"
}

/** Parses `--roles all` or `--roles gateway,region,...` into a role set. */
export const parseRoles = (input: ReadonlyArray<string>): ReadonlySet<Role> => {
  const parts = input.flatMap((s) => s.split(",")).map((s) => s.trim()).filter((s) => s.length > 0)
  if (parts.length === 0) throw new RolesError("roles: expected `all` or a comma-separated list of roles")
  const roles = new Set<Role>()
  for (const part of parts) {
    if (part === "all") {
      for (const role of ALL_ROLES) roles.add(role)
      continue
    }
    if (!(ALL_ROLES as ReadonlyArray<string>).includes(part)) {
      throw new RolesError(`roles: unknown role "${part}" (known: all, ${ALL_ROLES.join(", ")})`)
    }
    roles.add(part as Role)
  }
  return roles
}

export const assignedShardGroups = (roles: ReadonlySet<Role>): ReadonlyArray<string> => {
  const groups: Array<string> = ENTITY_ROLES.filter((role) => roles.has(role))
  if (roles.has(Role.Scheduler)) groups.push(DEFAULT_SHARD_GROUP)
  return groups.sort()
}
