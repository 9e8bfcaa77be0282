# Tessera on Nomad: one job, one task group per role (the roles of src/cluster/Roles.ts ALL_ROLES).
# Every group runs the same image; TESSERA_SERVER_ROLES picks the role. All runners share PostgreSQL
# (cluster + game storage) and Redis, and reach each other on the runner port.
#
# Secrets and connection URLs are not in this file: they come from the Nomad Variable at
# nomad/jobs/tessera (readable by every task of this job), created once with
#   nomad var put nomad/jobs/tessera auth_secret="$(openssl rand -base64 32)" \
#     postgres_url=postgres://tessera:PASSWORD@postgres.service.consul:5432/tessera \
#     redis_url=redis://redis.service.consul:6379
# then:
#   nomad job run -var image=REGISTRY/tessera:0.1.0 deploy/nomad/tessera.nomad.hcl
#
# Ports: "http" is mapped to 7350 in the container (server.port default); the service and its checks
# use the host side. "runner" is a dynamic host port mapped to the same number inside the container:
# the runner advertises NOMAD_IP_runner:NOMAD_PORT_runner to the other runners and listens on that
# same port (cluster.runner_port is both), so several runners can share a node.
#
# Shutdown: Nomad deregisters the service, waits shutdown_delay, then sends SIGTERM; the process drains
# within server.shutdown_timeout_ms (10 s default) and exits; kill_timeout (25 s) must exceed it.
# Nomad clients cap kill_timeout at max_kill_timeout (30 s by default).

variable "image" {
  type        = string
  description = "Tessera image (multi-arch), e.g. registry.example.com/tessera:0.1.0"
  default     = "tessera:0.1.0"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "service_provider" {
  type        = string
  description = "consul (load balancers route on its health) or nomad (built-in service discovery, Nomad >= 1.4)"
  default     = "consul"
}

variable "log_level" {
  type    = string
  default = "info"
}

variable "gateway_count" {
  type    = number
  default = 2
}

variable "region_count" {
  type    = number
  default = 2
}

variable "session_count" {
  type    = number
  default = 2
}

variable "scheduler_count" {
  type    = number
  default = 2
}

variable "expert_chat_count" {
  type    = number
  default = 1
}

variable "expert_matchmaking_count" {
  type    = number
  default = 1
}

job "tessera" {
  type        = "service"
  datacenters = var.datacenters

  # Rolling deploys: one allocation at a time per group, healthy = every service check passing
  # (/health and /ready) for min_healthy_time; a deployment that never gets there is rolled back.
  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "15s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = true
    stagger           = "10s"
  }

  # Client-facing runners: WebSocket /v1/ws and POST /v1/auth/guest on the http port. Scale on
  # connections (tessera_connections); put the load balancer in front of the tessera-gateway service.
  group "gateway" {
    count = var.gateway_count

    network {
      port "http" {
        to = 7350
      }
      port "runner" {}
    }

    # Between service deregistration and SIGTERM: load balancers stop sending new clients first.
    shutdown_delay = "5s"

    restart {
      attempts = 3
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      provider = var.service_provider
      name     = "tessera-gateway"
      port     = "http"
      tags     = ["tessera", "gateway", "public"]

      # Liveness: the process answers; restart it when it stops answering.
      check {
        name     = "alive"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }

      # Readiness: storage answers and the runner joined the cluster; gates deployments and routing.
      check {
        name      = "ready"
        type      = "http"
        path      = "/ready"
        interval  = "5s"
        timeout   = "3s"
        on_update = "require_healthy"
      }
    }

    task "tessera" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http", "runner"]
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "25s"

      env {
        TESSERA_SERVER_ROLES        = "gateway"
        TESSERA_SERVER_HOST         = "0.0.0.0"
        TESSERA_SERVER_PORT         = "${NOMAD_PORT_http}"
        TESSERA_SERVER_DEV          = "false"
        TESSERA_SERVER_LOG_LEVEL    = var.log_level
        TESSERA_STORAGE_BACKEND     = "postgres"
        TESSERA_REDIS_ENABLED       = "true"
        TESSERA_CLUSTER_TRANSPORT   = "socket"
        TESSERA_CLUSTER_RUNNER_HOST = "${NOMAD_IP_runner}"
        TESSERA_CLUSTER_RUNNER_PORT = "${NOMAD_PORT_runner}"
      }

      template {
        destination = "secrets/tessera.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/tessera" }}
          TESSERA_AUTH_SECRET={{ .auth_secret }}
          TESSERA_STORAGE_POSTGRES_URL={{ .postgres_url }}
          TESSERA_REDIS_URL={{ .redis_url }}
          {{- end }}
          EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }

  # Authoritative simulation at a fixed tick: the CPU-heavy role, given the most cpu and memory.
  group "region" {
    count = var.region_count

    network {
      port "http" {
        to = 7350
      }
      port "runner" {}
    }

    # Between service deregistration and SIGTERM: load balancers stop sending new clients first.
    shutdown_delay = "5s"

    restart {
      attempts = 3
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      provider = var.service_provider
      name     = "tessera-region"
      port     = "http"
      tags     = ["tessera", "region"]

      # Liveness: the process answers; restart it when it stops answering.
      check {
        name     = "alive"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }

      # Readiness: storage answers and the runner joined the cluster; gates deployments and routing.
      check {
        name      = "ready"
        type      = "http"
        path      = "/ready"
        interval  = "5s"
        timeout   = "3s"
        on_update = "require_healthy"
      }
    }

    task "tessera" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http", "runner"]
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "25s"

      env {
        TESSERA_SERVER_ROLES        = "region"
        TESSERA_SERVER_HOST         = "0.0.0.0"
        TESSERA_SERVER_PORT         = "${NOMAD_PORT_http}"
        TESSERA_SERVER_DEV          = "false"
        TESSERA_SERVER_LOG_LEVEL    = var.log_level
        TESSERA_STORAGE_BACKEND     = "postgres"
        TESSERA_REDIS_ENABLED       = "true"
        TESSERA_CLUSTER_TRANSPORT   = "socket"
        TESSERA_CLUSTER_RUNNER_HOST = "${NOMAD_IP_runner}"
        TESSERA_CLUSTER_RUNNER_PORT = "${NOMAD_PORT_runner}"
      }

      template {
        destination = "secrets/tessera.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/tessera" }}
          TESSERA_AUTH_SECRET={{ .auth_secret }}
          TESSERA_STORAGE_POSTGRES_URL={{ .postgres_url }}
          TESSERA_REDIS_URL={{ .redis_url }}
          {{- end }}
          EOT
      }

      resources {
        cpu    = 1500
        memory = 1024
      }
    }
  }

  # Player session entities.
  group "session" {
    count = var.session_count

    network {
      port "http" {
        to = 7350
      }
      port "runner" {}
    }

    # Between service deregistration and SIGTERM: load balancers stop sending new clients first.
    shutdown_delay = "5s"

    restart {
      attempts = 3
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      provider = var.service_provider
      name     = "tessera-session"
      port     = "http"
      tags     = ["tessera", "session"]

      # Liveness: the process answers; restart it when it stops answering.
      check {
        name     = "alive"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }

      # Readiness: storage answers and the runner joined the cluster; gates deployments and routing.
      check {
        name      = "ready"
        type      = "http"
        path      = "/ready"
        interval  = "5s"
        timeout   = "3s"
        on_update = "require_healthy"
      }
    }

    task "tessera" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http", "runner"]
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "25s"

      env {
        TESSERA_SERVER_ROLES        = "session"
        TESSERA_SERVER_HOST         = "0.0.0.0"
        TESSERA_SERVER_PORT         = "${NOMAD_PORT_http}"
        TESSERA_SERVER_DEV          = "false"
        TESSERA_SERVER_LOG_LEVEL    = var.log_level
        TESSERA_STORAGE_BACKEND     = "postgres"
        TESSERA_REDIS_ENABLED       = "true"
        TESSERA_CLUSTER_TRANSPORT   = "socket"
        TESSERA_CLUSTER_RUNNER_HOST = "${NOMAD_IP_runner}"
        TESSERA_CLUSTER_RUNNER_PORT = "${NOMAD_PORT_runner}"
      }

      template {
        destination = "secrets/tessera.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/tessera" }}
          TESSERA_AUTH_SECRET={{ .auth_secret }}
          TESSERA_STORAGE_POSTGRES_URL={{ .postgres_url }}
          TESSERA_REDIS_URL={{ .redis_url }}
          {{- end }}
          EOT
      }

      resources {
        cpu    = 300
        memory = 384
      }
    }
  }

  # The Scheduler cluster singleton and the cluster's "default" shard group (runner health):
  # more than one allocation only gives a warm standby.
  group "scheduler" {
    count = var.scheduler_count

    network {
      port "http" {
        to = 7350
      }
      port "runner" {}
    }

    # Between service deregistration and SIGTERM: load balancers stop sending new clients first.
    shutdown_delay = "5s"

    restart {
      attempts = 3
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      provider = var.service_provider
      name     = "tessera-scheduler"
      port     = "http"
      tags     = ["tessera", "scheduler"]

      # Liveness: the process answers; restart it when it stops answering.
      check {
        name     = "alive"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }

      # Readiness: storage answers and the runner joined the cluster; gates deployments and routing.
      check {
        name      = "ready"
        type      = "http"
        path      = "/ready"
        interval  = "5s"
        timeout   = "3s"
        on_update = "require_healthy"
      }
    }

    task "tessera" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http", "runner"]
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "25s"

      env {
        TESSERA_SERVER_ROLES        = "scheduler"
        TESSERA_SERVER_HOST         = "0.0.0.0"
        TESSERA_SERVER_PORT         = "${NOMAD_PORT_http}"
        TESSERA_SERVER_DEV          = "false"
        TESSERA_SERVER_LOG_LEVEL    = var.log_level
        TESSERA_STORAGE_BACKEND     = "postgres"
        TESSERA_REDIS_ENABLED       = "true"
        TESSERA_CLUSTER_TRANSPORT   = "socket"
        TESSERA_CLUSTER_RUNNER_HOST = "${NOMAD_IP_runner}"
        TESSERA_CLUSTER_RUNNER_PORT = "${NOMAD_PORT_runner}"
      }

      template {
        destination = "secrets/tessera.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/tessera" }}
          TESSERA_AUTH_SECRET={{ .auth_secret }}
          TESSERA_STORAGE_POSTGRES_URL={{ .postgres_url }}
          TESSERA_REDIS_URL={{ .redis_url }}
          {{- end }}
          EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }

  # The chat expert, role "expert:chat" (service names must be DNS labels, hence expert-chat).
  group "expert-chat" {
    count = var.expert_chat_count

    network {
      port "http" {
        to = 7350
      }
      port "runner" {}
    }

    # Between service deregistration and SIGTERM: load balancers stop sending new clients first.
    shutdown_delay = "5s"

    restart {
      attempts = 3
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      provider = var.service_provider
      name     = "tessera-expert-chat"
      port     = "http"
      tags     = ["tessera", "expert-chat"]

      # Liveness: the process answers; restart it when it stops answering.
      check {
        name     = "alive"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }

      # Readiness: storage answers and the runner joined the cluster; gates deployments and routing.
      check {
        name      = "ready"
        type      = "http"
        path      = "/ready"
        interval  = "5s"
        timeout   = "3s"
        on_update = "require_healthy"
      }
    }

    task "tessera" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http", "runner"]
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "25s"

      env {
        TESSERA_SERVER_ROLES        = "expert:chat"
        TESSERA_SERVER_HOST         = "0.0.0.0"
        TESSERA_SERVER_PORT         = "${NOMAD_PORT_http}"
        TESSERA_SERVER_DEV          = "false"
        TESSERA_SERVER_LOG_LEVEL    = var.log_level
        TESSERA_STORAGE_BACKEND     = "postgres"
        TESSERA_REDIS_ENABLED       = "true"
        TESSERA_CLUSTER_TRANSPORT   = "socket"
        TESSERA_CLUSTER_RUNNER_HOST = "${NOMAD_IP_runner}"
        TESSERA_CLUSTER_RUNNER_PORT = "${NOMAD_PORT_runner}"
      }

      template {
        destination = "secrets/tessera.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/tessera" }}
          TESSERA_AUTH_SECRET={{ .auth_secret }}
          TESSERA_STORAGE_POSTGRES_URL={{ .postgres_url }}
          TESSERA_REDIS_URL={{ .redis_url }}
          {{- end }}
          EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }

  # The matchmaking expert, role "expert:matchmaking" (service names must be DNS labels, hence expert-matchmaking).
  group "expert-matchmaking" {
    count = var.expert_matchmaking_count

    network {
      port "http" {
        to = 7350
      }
      port "runner" {}
    }

    # Between service deregistration and SIGTERM: load balancers stop sending new clients first.
    shutdown_delay = "5s"

    restart {
      attempts = 3
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      provider = var.service_provider
      name     = "tessera-expert-matchmaking"
      port     = "http"
      tags     = ["tessera", "expert-matchmaking"]

      # Liveness: the process answers; restart it when it stops answering.
      check {
        name     = "alive"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }

      # Readiness: storage answers and the runner joined the cluster; gates deployments and routing.
      check {
        name      = "ready"
        type      = "http"
        path      = "/ready"
        interval  = "5s"
        timeout   = "3s"
        on_update = "require_healthy"
      }
    }

    task "tessera" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http", "runner"]
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "25s"

      env {
        TESSERA_SERVER_ROLES        = "expert:matchmaking"
        TESSERA_SERVER_HOST         = "0.0.0.0"
        TESSERA_SERVER_PORT         = "${NOMAD_PORT_http}"
        TESSERA_SERVER_DEV          = "false"
        TESSERA_SERVER_LOG_LEVEL    = var.log_level
        TESSERA_STORAGE_BACKEND     = "postgres"
        TESSERA_REDIS_ENABLED       = "true"
        TESSERA_CLUSTER_TRANSPORT   = "socket"
        TESSERA_CLUSTER_RUNNER_HOST = "${NOMAD_IP_runner}"
        TESSERA_CLUSTER_RUNNER_PORT = "${NOMAD_PORT_runner}"
      }

      template {
        destination = "secrets/tessera.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/tessera" }}
          TESSERA_AUTH_SECRET={{ .auth_secret }}
          TESSERA_STORAGE_POSTGRES_URL={{ .postgres_url }}
          TESSERA_REDIS_URL={{ .redis_url }}
          {{- end }}
          EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
