//! The command line: `legato serve`, `legato function`, the client commands, `legato user`
//! and `legato migrate`, each run by its module; the settings they share are in
//! [`crate::settings`].

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::settings::{ServeArgs, StoreArgs};

#[derive(Debug, Parser)]
#[command(
    name = "legato",
    version,
    about = "Serverless music streaming over HLS"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve both functions and the web player on one port (the all-in-one server).
    Serve(ServeArgs),
    #[command(flatten)]
    Client(crate::client_cli::ClientCommand),
    /// Run one OpenFaaS function (`crud`, `streaming` or `subsonic`) behind of-watchdog.
    Function(crate::function::FunctionArgs),
    /// Manage the users who sign in from Subsonic apps.
    #[command(subcommand)]
    User(crate::user_cli::UserCommand),
    /// Move the segments a store holds into the object store given by --blobs; resumable,
    /// and safe while servers started with that --blobs keep serving.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => crate::serve::serve(args).await.map(|()| ExitCode::SUCCESS),
            Command::Client(cmd) => crate::client_cli::run(cmd).await,
            Command::Function(args) => crate::function::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::User(cmd) => crate::user_cli::run(cmd).await,
            Command::Migrate(args) => crate::store::migrate(&args.store).await,
        }
    }
}
