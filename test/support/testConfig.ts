/** The TOML the integration tests run the server with: small rooms, short windows, small cells. */
export const testToml = (extra = ""): string => `
[server]
log_level = "warning"
shutdown_timeout_ms = 8000

[storage]
write_behind_ms = 200

[session]
resume_window_seconds = 4

[region]
cell_size = 8
interest_radius = 1
max_speed = 10
spawn_radius = 2

[scheduler]
empty_instance_grace_seconds = 2

[chat]
history_size = 20
messages_per_second = 1
burst = 3
banned_words = ["darn"]

[gateway]
max_payload_bytes = 512
messages_per_second = 40
message_burst = 60
max_bad_messages = 5

[cluster]
simulate_remote_serialization = true

[[experiences]]
id = "arena"
name = "Arena"
tick_rate = 20
max_players = 50

[[experiences]]
id = "lobby"
name = "Lobby"
tick_rate = 20
max_players = 4

[[experiences]]
id = "duel"
name = "Duel"
tick_rate = 20
max_players = 2
${extra}
`
