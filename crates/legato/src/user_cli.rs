//! `legato user …`: the people who sign in from Subsonic apps, managed on the store directly
//! (as the server's operator, on the machine that holds the store and the secret key).
//!
//! Passwords come from a file or a prompt, never from the command line alone (it shows in
//! `ps` and shell history). They are sealed with the secret key before they reach the store.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use legato_http::subsonic::{check_new_user, new_user_key};
use legato_store::{StoreError, User, UserKey};

use crate::settings::StoreArgs;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (asks for the password unless --password-file is given).
    Add(AddArgs),
    /// List the users.
    List(StoreOnly),
    /// Change a user's password.
    Passwd(PasswdArgs),
    /// Remove a user with their keys, playlists, stars and plays.
    Rm(NameArgs),
    /// Make an API key for a user (printed once), or revoke keys.
    Key(KeyArgs),
}

#[derive(Debug, Args)]
pub struct StoreOnly {
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    name: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    name: String,
    /// The user may see and change every user's playlists.
    #[arg(long)]
    admin: bool,
    /// File whose first line is the password.
    #[arg(long)]
    password_file: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    name: String,
    /// File whose first line is the new password.
    #[arg(long)]
    password_file: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    name: String,
    /// A name for the new key, to tell keys apart (`phone`, `car`).
    #[arg(long, default_value = "key", conflicts_with_all = ["revoke", "revoke_all", "list"])]
    label: String,
    /// Revoke the user's keys with this label.
    #[arg(long)]
    revoke: Option<String>,
    /// Revoke every key of the user.
    #[arg(long)]
    revoke_all: bool,
    /// List the user's keys (labels and dates; keys themselves are not stored).
    #[arg(long)]
    list: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add(args) => {
            let secret = args.store.secret_key()?;
            let password = read_password(args.password_file.as_ref(), true)?;
            check_new_user(&args.name, &password).map_err(anyhow::Error::msg)?;
            let store = crate::store::open(&args.store).await?;
            let user = User {
                name: args.name.clone(),
                admin: args.admin,
                sealed_password: secret.seal(&password),
                created_at: now_ms(),
            };
            match store.create_user(user).await {
                Ok(_) => println!("added user {}", args.name),
                Err(StoreError::Invalid(_)) => {
                    bail!(
                        "the user {} exists already (legato user passwd changes a password)",
                        args.name
                    )
                }
                Err(e) => return Err(e.into()),
            }
        }
        UserCommand::List(args) => {
            let store = crate::store::open(&args.store).await?;
            let users = store.list_users().await?;
            if users.is_empty() {
                println!("no users yet: legato user add NAME");
            }
            for user in users {
                let keys = store.list_user_keys(&user.name).await?.len();
                println!(
                    "{}{}\t{} key{}\tsince {}",
                    user.name,
                    if user.admin { " (admin)" } else { "" },
                    keys,
                    if keys == 1 { "" } else { "s" },
                    legato_http::subsonic::iso_time(user.created_at)
                );
            }
        }
        UserCommand::Passwd(args) => {
            let secret = args.store.secret_key()?;
            let password = read_password(args.password_file.as_ref(), true)?;
            check_new_user(&args.name, &password).map_err(anyhow::Error::msg)?;
            let store = crate::store::open(&args.store).await?;
            store
                .set_user_password(&args.name, secret.seal(&password))
                .await
                .map_err(|e| no_user(e, &args.name))?;
            println!("changed the password of {}", args.name);
        }
        UserCommand::Rm(args) => {
            let store = crate::store::open(&args.store).await?;
            store
                .delete_user(&args.name)
                .await
                .map_err(|e| no_user(e, &args.name))?;
            println!("removed user {}", args.name);
        }
        UserCommand::Key(args) => {
            let store = crate::store::open(&args.store).await?;
            store
                .get_user(&args.name)
                .await
                .map_err(|e| no_user(e, &args.name))?;
            if args.list {
                for key in store.list_user_keys(&args.name).await? {
                    println!(
                        "{}\tmade {}",
                        key.label,
                        legato_http::subsonic::iso_time(key.created_at)
                    );
                }
            } else if args.revoke_all || args.revoke.is_some() {
                let revoked = store
                    .revoke_user_keys(&args.name, args.revoke.as_deref())
                    .await?;
                eprintln!(
                    "revoked {revoked} key{}",
                    if revoked == 1 { "" } else { "s" }
                );
                if revoked == 0 {
                    return Ok(ExitCode::FAILURE);
                }
            } else {
                let label = args.label.trim();
                if label.is_empty() || label.chars().count() > 64 {
                    bail!("a key label is 1 to 64 characters");
                }
                let (key, hash) = new_user_key();
                store
                    .add_user_key(UserKey {
                        hash,
                        user: args.name.clone(),
                        label: label.to_owned(),
                        created_at: now_ms(),
                    })
                    .await?;
                eprintln!(
                    "a new API key for {} ({label}); it is shown only now — Subsonic apps send it as apiKey:",
                    args.name
                );
                println!("{key}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn no_user(error: StoreError, name: &str) -> anyhow::Error {
    match error {
        StoreError::NotFound(_) => anyhow::anyhow!("there is no user {name} (legato user list)"),
        other => other.into(),
    }
}

fn now_ms() -> i64 {
    legato_ingest::now_millis()
}

/// The password: the first line of `file`, or typed twice at a prompt without echo.
fn read_password(file: Option<&PathBuf>, confirm: bool) -> anyhow::Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the password file {}", file.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    if !std::io::stdin().is_terminal() {
        // Piped in (`echo … | legato user add ana`): the first line.
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let password = rpassword::prompt_password("Password: ")?;
    if confirm && rpassword::prompt_password("Again: ")? != password {
        bail!("the two passwords differ");
    }
    Ok(password)
}
