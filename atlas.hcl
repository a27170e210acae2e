// Atlas project file. The desired state is schema.sql; versioned migrations live in
// migrations/ with their atlas.sum. URLs come from the environment so no secret is
// written here:
//   DATABASE_URL   the database to migrate (apply, status)
//   ATLAS_DEV_URL  an empty scratch database Atlas may clean at will (diff, lint,
//                  validate). Never the target database.
// `make migration`, `make migrate` and `make check` set both to the embedded server
// when DATABASE_URL is not set.

variable "url" {
  type    = string
  default = getenv("DATABASE_URL")
}

variable "dev_url" {
  type    = string
  default = getenv("ATLAS_DEV_URL")
}

// Development: the embedded server (or whatever DATABASE_URL points at).
env "local" {
  src = "file://schema.sql"
  url = var.url
  dev = var.dev_url
  migration {
    dir = "file://migrations"
  }
  lint {
    destructive {
      error = true
    }
  }
}

// CI: the same, named apart so CI-only settings have a home.
env "ci" {
  src = "file://schema.sql"
  url = var.url
  dev = var.dev_url
  migration {
    dir = "file://migrations"
  }
  lint {
    destructive {
      error = true
    }
  }
}

// Deploys: `atlas migrate apply --env prod` with DATABASE_URL set.
env "prod" {
  url = var.url
  migration {
    dir = "file://migrations"
  }
}
