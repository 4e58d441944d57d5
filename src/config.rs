//! Configuration: built-in defaults, then the environment (also read from a `.env`
//! file), then command-line flags. [`Settings`] is what the user typed; [`Config`] is the
//! checked result. An invalid setting stops the start with one line naming it.
//!
//! `Debug` never shows the secret key or database passwords.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::HeaderValue;
use base64::Engine;
use rand::RngCore;

use crate::gateway::{KeepAlive, SendLimits};
use crate::http::HttpOptions;
use crate::service::AuthConfig;

/// The settings `banter serve` (and the other subcommands) accept.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Database URL: `sqlite:///path/banter.db` or `postgres://user@host/db`.
    /// Unset: a SQLite file `banter.db` in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the default SQLite database and the generated secret key.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Address to listen on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8000")]
    pub bind: String,

    /// Key that signs access tokens (at least 32 characters). Unset: a random key is
    /// generated once and kept in `<DATA_DIR>/secret_key`. All nodes of a cluster need
    /// the same key.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Comma-separated origins allowed to call the API from other sites
    /// (e.g. `https://chat.example.com`). Unset: none; the bundled client needs none.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "")]
    pub cors_allowed_origins: String,

    /// Comma-separated host names this server answers to (`chat.example.com`,
    /// `.example.com` for a domain and its subdomains). Unset: any.
    #[arg(long, env = "ALLOWED_HOSTS", default_value = "")]
    pub allowed_hosts: String,

    /// Access token lifetime in minutes.
    #[arg(long, env = "ACCESS_TOKEN_LIFETIME", default_value = "10")]
    pub access_token_lifetime: String,

    /// Refresh token lifetime in days.
    #[arg(long, env = "REFRESH_TOKEN_LIFETIME", default_value = "5")]
    pub refresh_token_lifetime: String,

    /// WebSocket messages a connection may send per second (a user across all their
    /// connections: twice that). Bursts of three seconds' worth are allowed.
    #[arg(long, env = "WS_SEND_RATE", default_value = "20")]
    pub ws_send_rate: String,

    /// Seconds between the server's WebSocket pings; a peer that misses two is dropped.
    #[arg(long, env = "WS_PING_INTERVAL", default_value = "30")]
    pub ws_ping_interval: String,

    /// Seconds a WebSocket outlives its expired access token while waiting for a fresh
    /// `auth` frame.
    #[arg(long, env = "WS_AUTH_GRACE", default_value = "60")]
    pub ws_auth_grace: String,

    /// NATS server that joins this node to a cluster (`nats://host:4222`); needs a
    /// PostgreSQL DATABASE_URL shared by all nodes. Unset: a standalone node.
    #[arg(long, env = "BUS_URL", hide_env_values = true)]
    pub bus_url: Option<String>,

    /// Name of the cluster on the bus: nodes with the same name form one cluster, so
    /// several clusters can share a NATS server.
    #[arg(long, env = "CLUSTER_NAME", default_value = "banter")]
    pub cluster_name: String,

    /// PEM certificate chain: with TLS_KEY, Banter serves HTTPS and WSS itself.
    #[arg(long, env = "TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for TLS_CERT.
    #[arg(long, env = "TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// Certificate and key files for serving HTTPS and WSS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid {setting}: {problem}")]
pub struct ConfigError {
    setting: &'static str,
    problem: String,
}

fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        problem: problem.into(),
    }
}

/// Checked configuration.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    secret_key: Vec<u8>,
    pub cors_allowed_origins: Vec<HeaderValue>,
    pub allowed_hosts: Vec<String>,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub ws_send_rate: u32,
    pub keepalive: KeepAlive,
    pub tls: Option<TlsFiles>,
    /// The cluster bus (NATS URL and cluster name); `None` for a standalone node.
    pub bus: Option<(String, String)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("bind", &self.bind)
            .field("secret_key", &"<redacted>")
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("ws_send_rate", &self.ws_send_rate)
            .field("keepalive", &self.keepalive)
            .field("tls", &self.tls)
            .field(
                "bus",
                &self
                    .bus
                    .as_ref()
                    .map(|(url, cluster)| (redact_url(url), cluster)),
            )
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

fn positive_number(
    setting: &'static str,
    raw: &str,
    unit_secs: u64,
) -> Result<Duration, ConfigError> {
    match raw.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n.saturating_mul(unit_secs))),
        _ => Err(invalid(
            setting,
            format!("'{raw}' is not a positive whole number"),
        )),
    }
}

fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Config {
    /// Checks every setting; creates the data directory and, when needed, the secret key.
    pub fn resolve(settings: &Settings) -> Result<Config, ConfigError> {
        let bind: SocketAddr = settings.bind.trim().parse().map_err(|_| {
            invalid(
                "BIND",
                format!("'{}' is not an address like 127.0.0.1:8000", settings.bind),
            )
        })?;
        let access_token_lifetime =
            positive_number("ACCESS_TOKEN_LIFETIME", &settings.access_token_lifetime, 60)?;
        let refresh_token_lifetime = positive_number(
            "REFRESH_TOKEN_LIFETIME",
            &settings.refresh_token_lifetime,
            86_400,
        )?;
        let cors_allowed_origins = list(&settings.cors_allowed_origins)
            .into_iter()
            .map(|origin| {
                let well_formed = (origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin
                        .trim_end_matches('/')
                        .contains(|c: char| c.is_whitespace());
                if !well_formed {
                    return Err(invalid(
                        "CORS_ALLOWED_ORIGINS",
                        format!("'{origin}' is not an origin like https://chat.example.com"),
                    ));
                }
                HeaderValue::from_str(origin.trim_end_matches('/')).map_err(|_| {
                    invalid(
                        "CORS_ALLOWED_ORIGINS",
                        format!("'{origin}' is not a valid origin"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ws_send_rate = match settings.ws_send_rate.trim().parse::<u32>() {
            Ok(rate) if rate > 0 => rate,
            _ => {
                return Err(invalid(
                    "WS_SEND_RATE",
                    format!("'{}' is not a positive whole number", settings.ws_send_rate),
                ));
            }
        };
        let keepalive = KeepAlive {
            ping_interval: positive_number("WS_PING_INTERVAL", &settings.ws_ping_interval, 1)?,
            expiry_grace: positive_number("WS_AUTH_GRACE", &settings.ws_auth_grace, 1)?,
        };
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (None, None) => None,
            (Some(_), None) => return Err(invalid("TLS_KEY", "is required when TLS_CERT is set")),
            (None, Some(_)) => return Err(invalid("TLS_CERT", "is required when TLS_KEY is set")),
            (Some(cert), Some(key)) => {
                for (setting, path) in [("TLS_CERT", cert), ("TLS_KEY", key)] {
                    std::fs::metadata(path).map_err(|e| {
                        invalid(setting, format!("cannot read '{}': {e}", path.display()))
                    })?;
                }
                Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
        };
        let allowed_hosts = list(&settings.allowed_hosts)
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();

        let data_dir = settings.data_dir.clone();
        let needs_data_dir = settings.database_url.is_none() || settings.secret_key.is_none();
        if needs_data_dir {
            std::fs::create_dir_all(&data_dir).map_err(|e| {
                invalid(
                    "DATA_DIR",
                    format!("cannot create '{}': {e}", data_dir.display()),
                )
            })?;
        }
        let database_url = match settings.database_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => {
                if !(url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://"))
                {
                    return Err(invalid(
                        "DATABASE_URL",
                        "must start with sqlite: or postgres://",
                    ));
                }
                url.to_owned()
            }
            _ => format!("sqlite://{}", data_dir.join("banter.db").display()),
        };
        let bus = match settings
            .bus_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
        {
            None => None,
            Some(url) if !url.starts_with("nats://") => {
                return Err(invalid("BUS_URL", "must start with nats://"));
            }
            Some(_) if !database_url.starts_with("postgres") => {
                return Err(invalid(
                    "BUS_URL",
                    "a cluster needs DATABASE_URL=postgres://… shared by every node (SQLite cannot be shared)",
                ));
            }
            Some(url) => {
                let cluster = settings.cluster_name.trim();
                if cluster.is_empty()
                    || !cluster
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(invalid(
                        "CLUSTER_NAME",
                        "may contain only letters, digits, '-' and '_'",
                    ));
                }
                Some((url.to_owned(), cluster.to_owned()))
            }
        };
        let secret_key = match settings.secret_key.as_deref() {
            Some(key) if key.chars().count() < 32 => {
                return Err(invalid("SECRET_KEY", "must be at least 32 characters"));
            }
            Some(key) => key.as_bytes().to_vec(),
            None => load_or_create_secret(&data_dir.join("secret_key"))?,
        };
        Ok(Config {
            database_url,
            data_dir,
            bind,
            secret_key,
            cors_allowed_origins,
            allowed_hosts,
            access_token_lifetime,
            refresh_token_lifetime,
            ws_send_rate,
            keepalive,
            tls,
            bus,
        })
    }

    pub fn auth(&self) -> AuthConfig {
        AuthConfig {
            secret: self.secret_key.clone(),
            access_lifetime: self.access_token_lifetime,
            refresh_lifetime: self.refresh_token_lifetime,
        }
    }

    pub fn send_limits(&self) -> SendLimits {
        SendLimits {
            per_connection_per_second: self.ws_send_rate,
            per_user_per_second: self.ws_send_rate.saturating_mul(2),
        }
    }

    pub fn http_options(&self) -> HttpOptions {
        HttpOptions {
            cors_allowed_origins: self.cors_allowed_origins.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
        }
    }
}

/// Reads the generated key, or makes one (readable by its owner only) on first start.
fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let setting = "SECRET_KEY";
    match std::fs::read_to_string(path) {
        Ok(key) if key.trim().len() >= 32 => return Ok(key.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(invalid(
                setting,
                format!(
                    "'{}' holds a key shorter than 32 characters",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(invalid(
                setting,
                format!("cannot read '{}': {e}", path.display()),
            ));
        }
        Err(_) => {}
    }
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut bytes);
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    write_private(path, &key)
        .map_err(|e| invalid(setting, format!("cannot write '{}': {e}", path.display())))?;
    tracing::info!(path = %path.display(), "generated a new secret key");
    Ok(key.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> Settings {
        Settings {
            database_url: None,
            data_dir: dir.to_path_buf(),
            bind: "127.0.0.1:0".into(),
            secret_key: None,
            cors_allowed_origins: String::new(),
            allowed_hosts: String::new(),
            access_token_lifetime: "10".into(),
            refresh_token_lifetime: "5".into(),
            ws_send_rate: "20".into(),
            ws_ping_interval: "30".into(),
            ws_auth_grace: "60".into(),
            tls_cert: None,
            tls_key: None,
            bus_url: None,
            cluster_name: "banter".into(),
        }
    }

    #[test]
    fn defaults_give_sqlite_in_the_data_dir_and_a_stable_generated_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = Config::resolve(&settings(dir.path())).unwrap();
        assert!(first.database_url.starts_with("sqlite://"));
        assert!(first.database_url.ends_with("banter.db"));
        let second = Config::resolve(&settings(dir.path())).unwrap();
        assert_eq!(
            first.secret_key, second.secret_key,
            "the generated key is kept"
        );
        assert!(!format!("{first:?}").contains(std::str::from_utf8(&first.secret_key).unwrap()));
    }

    #[test]
    fn each_bad_setting_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let check = |change: &dyn Fn(&mut Settings), name: &str| {
            let mut s = settings(dir.path());
            change(&mut s);
            let error = Config::resolve(&s).unwrap_err().to_string();
            assert!(error.starts_with(&format!("invalid {name}:")), "{error}");
        };
        check(&|s| s.bind = "nowhere".into(), "BIND");
        check(
            &|s| s.access_token_lifetime = "0".into(),
            "ACCESS_TOKEN_LIFETIME",
        );
        check(
            &|s| s.refresh_token_lifetime = "five".into(),
            "REFRESH_TOKEN_LIFETIME",
        );
        check(&|s| s.secret_key = Some("short".into()), "SECRET_KEY");
        check(
            &|s| s.database_url = Some("mysql://x".into()),
            "DATABASE_URL",
        );
        check(
            &|s| s.cors_allowed_origins = "example.com".into(),
            "CORS_ALLOWED_ORIGINS",
        );
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:hunter2@db/banter"),
            "postgres://bob:***@db/banter"
        );
        assert_eq!(
            redact_url("postgres://bob@db/banter"),
            "postgres://bob@db/banter"
        );
    }
}
