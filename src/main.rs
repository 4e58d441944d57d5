//! The `banter` command: serve, migrate, and manage users on the database directly.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use banter::config::{Config, Settings};
use banter::domain::validate::{Email, Password, Username};

/// jemalloc instead of glibc's malloc: under durable sends malloc and free were ~13% of
/// the server's CPU, and with jemalloc it acked 17-18% more on both databases with less
/// memory per idle connection (docs/BENCHMARKS.md, session 7). It also hands the 19 MiB
/// block of each password hash back to the system, which glibc did only when told to
/// (a raised mmap threshold left 620 MB resident after 200 registrations).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "banter", version, about = "Banter: self-hosted real-time team chat", long_about = None)]
struct Cli {
    #[command(flatten)]
    settings: Settings,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (the default when no command is given).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Write a consistent copy of the SQLite database to PATH while Banter runs
    /// (for PostgreSQL, says how to use pg_dump instead).
    Backup { path: std::path::PathBuf },
    /// Manage user accounts directly in the database.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. Without --password, the password is read from standard input.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// The password; prefer standard input so it stays out of shell history.
        #[arg(long)]
        password: Option<String>,
        /// Make the user a server admin.
        #[arg(long)]
        admin: bool,
    },
    /// Deactivate a user: they cannot log in, and their tokens stop working at once.
    Deactivate { username: String },
    /// Make a user a server admin.
    Promote { username: String },
}

fn main() -> ExitCode {
    // A missing .env is normal; a broken one is worth saying.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("banter: cannot read .env: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("banter=info,tower_http=info,warn")),
        )
        .init();
    let config = match Config::resolve(&cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("banter: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("banter: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("banter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            banter::store::connect(&config.database_url).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::User(command) => user(command, config).await,
        Command::Backup { path } => {
            let store = banter::store::connect(&config.database_url).await?;
            store.backup(path.display().to_string()).await?;
            println!("backed up to {}", path.display());
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on BIND={}: {e}", config.bind))?;
    tracing::info!(
        address = %config.bind,
        database = %banter::config::redact_url(&config.database_url),
        "Banter is listening on http://{}",
        config.bind
    );
    banter::start(&config, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

async fn user(command: UserCommand, config: Config) -> anyhow::Result<()> {
    let service = banter::build_service(&config).await?;
    let find = |username: String| {
        let service = service.clone();
        async move {
            service
                .store()
                .user_by_username(username.to_ascii_lowercase())
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user named '{username}'"))
        }
    };
    match command {
        UserCommand::Create {
            username,
            email,
            password,
            admin,
        } => {
            let password = match password {
                Some(password) => password,
                None => {
                    let mut input = String::new();
                    std::io::stdin().read_to_string(&mut input)?;
                    input.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let username =
                Username::parse(&username).map_err(|e| anyhow::anyhow!("username {e}"))?;
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("email {e}"))?;
            let password =
                Password::parse(&password).map_err(|e| anyhow::anyhow!("password {e}"))?;
            let user = service
                .create_user(username, email, password, admin)
                .await?;
            println!(
                "created user '{}' (id {}){}",
                user.username,
                user.id,
                if admin { " as a server admin" } else { "" }
            );
        }
        UserCommand::Deactivate { username } => {
            let user = find(username).await?;
            service.set_user_flags(user.id, Some(false), None).await?;
            println!("deactivated '{}'", user.username);
        }
        UserCommand::Promote { username } => {
            let user = find(username).await?;
            service.set_user_flags(user.id, None, Some(true)).await?;
            println!("'{}' is now a server admin", user.username);
        }
    }
    Ok(())
}
