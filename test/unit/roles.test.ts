import { describe, expect, it } from "vitest"
import {
  ALL_ROLES,
  assignedShardGroups,
  availableShardGroups,
  DEFAULT_SHARD_GROUP,
  parseRoles,
  Role,
  RolesError
} from "../../src/cluster/Roles.js"

const sorted = (roles: Iterable<string>): Array<string> => [...roles].sort()

describe("parseRoles", () => {
  it("ALL_ROLES lists every role once", () => {
    expect(sorted(ALL_ROLES)).toEqual(["expert:chat", "expert:matchmaking", "gateway", "region", "scheduler", "session"])
  })

  it.each([
    ["all", ["all"], ALL_ROLES],
    ["all with spaces", ["  all  "], ALL_ROLES],
    ["all plus a role", ["all,gateway"], ALL_ROLES],
    ["one role", ["gateway"], [Role.Gateway]],
    ["the expert role", ["expert:chat"], [Role.ExpertChat]],
    ["a comma list", ["gateway,region"], [Role.Gateway, Role.Region]],
    ["a comma list with spaces", [" gateway , region ,session "], [Role.Gateway, Role.Region, Role.Session]],
    ["empty items are skipped", ["gateway,,region,"], [Role.Gateway, Role.Region]],
    ["several arguments", ["gateway", "scheduler,expert:chat"], [Role.Gateway, Role.Scheduler, Role.ExpertChat]],
    ["duplicates collapse", ["region,region", "region"], [Role.Region]],
    ["every role by name", [ALL_ROLES.join(",")], ALL_ROLES]
  ] as const)("%s", (_name, input, expected) => {
    const roles = parseRoles(input)
    expect(sorted(roles)).toEqual(sorted(expected))
  })

  it.each([
    ["no arguments", []],
    ["an empty string", [""]],
    ["only spaces", ["   "]],
    ["only commas", [",,"]],
    ["commas and spaces", [" , , "]]
  ] as const)("rejects %s", (_name, input) => {
    expect(() => parseRoles(input)).toThrow(RolesError)
    expect(() => parseRoles(input)).toThrow("roles: expected `all` or a comma-separated list of roles")
  })

  it.each([
    ["a misspelt role", ["gatway"], "gatway"],
    ["an unknown role in a list", ["gateway,physics"], "physics"],
    ["an expert kind that does not exist", ["expert:voice"], "expert:voice"],
    ["the bare word expert", ["expert"], "expert"],
    ["a role with the wrong case", ["Gateway"], "Gateway"],
    ["ALL in capitals", ["ALL"], "ALL"]
  ] as const)("rejects %s and names it", (_name, input, bad) => {
    let error: unknown
    try {
      parseRoles(input)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RolesError)
    const message = (error as Error).message
    expect(message).toContain(`unknown role "${bad}"`)
    // The message lists what is allowed.
    for (const role of ["all", ...ALL_ROLES]) expect(message).toContain(role)
    expect((error as Error).name).toBe("RolesError")
  })
})

describe("shard groups", () => {
  it("availableShardGroups is sorted, has default and one group per entity role", () => {
    expect(availableShardGroups).toEqual([DEFAULT_SHARD_GROUP, "expert:chat", "expert:matchmaking", "region", "scheduler", "session"])
    expect([...availableShardGroups].sort()).toEqual(availableShardGroups)
    expect(availableShardGroups).not.toContain(Role.Gateway)
  })

  it.each([
    ["all", ["all"], [DEFAULT_SHARD_GROUP, "expert:chat", "expert:matchmaking", "region", "scheduler", "session"]],
    ["expert:matchmaking", ["expert:matchmaking"], ["expert:matchmaking"]],
    ["gateway only", ["gateway"], []],
    ["region", ["region"], ["region"]],
    ["session", ["session"], ["session"]],
    ["expert:chat", ["expert:chat"], ["expert:chat"]],
    ["scheduler brings default", ["scheduler"], [DEFAULT_SHARD_GROUP, "scheduler"]],
    ["gateway and region", ["gateway,region"], ["region"]],
    ["region and session", ["session,region"], ["region", "session"]],
    ["everything but the scheduler", ["gateway,region,session,expert:chat"], ["expert:chat", "region", "session"]],
    ["scheduler and chat", ["expert:chat,scheduler"], [DEFAULT_SHARD_GROUP, "expert:chat", "scheduler"]]
  ] as const)("assignedShardGroups(%s)", (_name, input, expected) => {
    const groups = assignedShardGroups(parseRoles(input))
    expect(groups).toEqual(expected)
    // Sorted, a subset of the available groups, "default" only with the scheduler role.
    expect([...groups].sort()).toEqual(groups)
    for (const g of groups) expect(availableShardGroups).toContain(g)
    expect(groups.includes(DEFAULT_SHARD_GROUP)).toBe(parseRoles(input).has(Role.Scheduler))
  })

  it("availableShardGroups does not depend on the roles of a runner", () => {
    const before = [...availableShardGroups]
    for (const input of [["all"], ["gateway"], ["region,session"], ["scheduler"]]) {
      assignedShardGroups(parseRoles(input))
      expect(availableShardGroups).toEqual(before)
    }
  })

  it("every subset of roles yields a sorted subset of availableShardGroups", () => {
    for (let mask = 1; mask < 1 << ALL_ROLES.length; mask++) {
      const roles = new Set(ALL_ROLES.filter((_, i) => mask & (1 << i)))
      const groups = assignedShardGroups(roles)
      expect([...groups].sort()).toEqual(groups)
      expect(new Set(groups).size).toBe(groups.length)
      for (const g of groups) expect(availableShardGroups).toContain(g)
      expect(groups.includes(DEFAULT_SHARD_GROUP)).toBe(roles.has(Role.Scheduler))
      for (const role of roles) {
        if (role !== Role.Gateway) expect(groups).toContain(role)
      }
    }
  })
})
