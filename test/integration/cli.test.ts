import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { tempDir } from "../support/ServerProcess.js"

const ROOT = Path.resolve(import.meta.dirname, "../..")

const tessera = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const result = spawnSync(process.execPath, ["dist/tessera.mjs", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 30_000
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const writeToml = (text: string) => {
  const file = Path.join(tempDir("cli"), "t.toml")
  Fs.writeFileSync(file, text)
  return file
}

describe("tessera CLI", () => {
  it("config check prints the resolved config of the default file", () => {
    const { code, stdout } = tessera(["config", "check", "config/default.toml"])
    expect(code).toBe(0)
    expect(stdout).toContain("[server]")
    expect(stdout).toMatch(/port = 7350/)
    expect(stdout).toContain("[[experiences]]")
  })

  it("config check applies TESSERA_* env overrides", () => {
    const { code, stdout } = tessera(["config", "check", "config/default.toml"], { TESSERA_SERVER_PORT: "9000" })
    expect(code).toBe(0)
    expect(stdout).toMatch(/port = 9000/)
  })

  it.each([
    ["a wrong type", "[gateway]\nmax_payload_bytes = \"big\"\n", "gateway.max_payload_bytes"],
    ["an unknown key", "[server]\nprot = 1\n", "server.prot"],
    ["a bad experience", "[[experiences]]\nid = \"a\"\nname = \"A\"\ntick_rate = 0\n", "experiences[0].tick_rate"],
    ["a bad role", "[server]\nroles = [\"gateway\", \"wizard\"]\n", "server.roles"]
  ])("config check names the bad key for %s", (_what, toml, key) => {
    const { code, stderr } = tessera(["config", "check", writeToml(toml)])
    expect(code).toBe(2)
    expect(stderr).toContain(key)
  })

  it("serve refuses to boot with an invalid env value, naming the key", () => {
    const { code, stderr } = tessera(["serve", "--data-dir", tempDir("cli-data")], { TESSERA_REGION_CELL_SIZE: "-3" })
    expect(code).toBe(2)
    expect(stderr).toContain("region.cell_size")
    expect(stderr).toContain("TESSERA_REGION_CELL_SIZE")
  })

  it("serve refuses the default secret outside dev mode", () => {
    const { code, stderr } = tessera(["serve", "--data-dir", tempDir("cli-data")], { TESSERA_SERVER_DEV: "false" })
    expect(code).toBe(2)
    expect(stderr).toContain("auth.secret")
  })

  it("serve rejects an unknown role from the flag", () => {
    const { code, stderr } = tessera(["serve", "--roles", "gateway,nope", "--data-dir", tempDir("cli-data")])
    expect(code).toBe(2)
    expect(stderr).toContain("nope")
  })
})
