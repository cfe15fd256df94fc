//! The command-line client: `legato add | ls | show | edit | rm | url | get | reprocess`, talking to a Legato
//! server over HTTP through `legato-client`.
//!
//! The contract with people and scripts: results go to stdout (`add` prints only ids, one per
//! line and in the order of the files, so `ids=$(legato add *.mp3)` works; a file the server
//! has already gives its existing track's id), progress and errors go to stderr, errors
//! start with `legato: `. Exit codes: 0 success; 1 the server refused something (or a local
//! file is missing); 2 a usage error (clap's); 3 no answer from the server. Commands over
//! several items (`add`, `rm`, `reprocess`) go on after a refusal and exit 1 at the end, but stop at once
//! when the server cannot be reached.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use legato_client::{Client, ClientError, ListParams, Progress, ServerUrl, Track};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::import::{self, Candidate, Look, io_reason, shown};

/// The server refused a request, or a local file cannot be read.
const EXIT_REFUSED: u8 = 1;
/// A usage error, as clap exits on its own.
const EXIT_USAGE: u8 = 2;
/// The server did not answer.
const EXIT_UNREACHABLE: u8 = 3;

/// Widest title or artist shown in the `ls` table; `show` has the full text.
const MAX_CELL_WIDTH: usize = 40;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Upload audio files, or whole folders of them, as tracks; prints each file's track id
    /// on its own line. Files the server has already are not sent again.
    Add(AddArgs),
    /// List tracks (oldest first), optionally those whose title or artist contains QUERY.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show one track.
    Show(ShowArgs),
    /// Change a track's title or artist.
    Edit(EditArgs),
    /// Delete tracks with their playlists and segments.
    #[command(visible_alias = "delete")]
    Rm(RmArgs),
    /// Print the absolute URL of a track's HLS playlist.
    Url(UrlArgs),
    /// Download a track's original file, exactly as it was uploaded.
    #[command(visible_alias = "download")]
    Get(GetArgs),
    /// Rebuild tracks' renditions from their original files with the server's current
    /// settings (e.g. a new --ladder); they stay playable meanwhile.
    Reprocess(ReprocessArgs),
}

/// Which server to talk to, and how.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The Legato server: a gateway root (http://host:8080) or the crud function's URL
    /// (http://host:8080/function/crud).
    #[arg(long, env = "LEGATO_URL", default_value = legato_client::DEFAULT_URL,
          value_parser = parse_server_url)]
    url: ServerUrl,
    /// API key, sent as `Authorization: Bearer <key>`.
    #[arg(long, env = "LEGATO_API_KEY", hide_env_values = true, value_parser = parse_api_key)]
    api_key: Option<ApiKey>,
}

/// An API key that never shows in `Debug` output.
#[derive(Clone)]
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

fn parse_server_url(text: &str) -> Result<ServerUrl, String> {
    ServerUrl::parse(text).map_err(|e| match e {
        ClientError::InvalidUrl { reason, .. } => reason,
        other => other.to_string(),
    })
}

fn parse_api_key(text: &str) -> Result<ApiKey, String> {
    if text.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(ApiKey(text.to_owned()))
    } else {
        Err("an API key is printable ASCII without spaces".to_owned())
    }
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Audio files, and folders to import: walked recursively, audio recognised by its bytes
    /// (other files are skipped), names starting with `.` and linked folders left out.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Title of the track; only with a single FILE (default: the file's name).
    #[arg(long)]
    name: Option<String>,
    /// Artist of the tracks.
    #[arg(long)]
    author: Option<String>,
    /// Files sent at once.
    #[arg(short, long, env = "LEGATO_JOBS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only tracks whose title or artist contains this text (case-insensitive).
    query: Option<String>,
    /// At most this many tracks (the server's default is 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: Option<u32>,
    /// Skip this many matching tracks first.
    #[arg(long)]
    offset: Option<u64>,
    /// Print the tracks as a JSON array, as the server sends them.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The track's id.
    id: String,
    /// Print the track as JSON, as the server sends it.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true).args(["name", "author"])))]
pub struct EditArgs {
    /// The track's id.
    id: String,
    /// New title.
    #[arg(long)]
    name: Option<String>,
    /// New artist.
    #[arg(long)]
    author: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Ids of the tracks to delete.
    #[arg(required = true, value_name = "ID")]
    ids: Vec<String>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct UrlArgs {
    /// The track's id.
    id: String,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The track's id.
    id: String,
    /// Where to write the file (`-` for stdout); default: the uploaded file's name, in the
    /// current folder.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["ids", "all"])))]
pub struct ReprocessArgs {
    /// Ids of the tracks to reprocess.
    #[arg(value_name = "ID")]
    ids: Vec<String>,
    /// Every track of the library (paged through the list).
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs one client command; every failure is reported here, so this always returns the exit
/// code.
pub async fn run(command: ClientCommand) -> anyhow::Result<ExitCode> {
    let code = match command {
        ClientCommand::Add(args) => add(args).await,
        ClientCommand::Ls(args) => ls(args).await,
        ClientCommand::Show(args) => show(args).await,
        ClientCommand::Edit(args) => edit(args).await,
        ClientCommand::Rm(args) => rm(args).await,
        ClientCommand::Url(args) => url(args).await,
        ClientCommand::Get(args) => get(args).await,
        ClientCommand::Reprocess(args) => reprocess(args).await,
    };
    Ok(ExitCode::from(code))
}

fn connect(server: &ServerArgs) -> Result<Client, u8> {
    let key = server.api_key.as_ref().map(|key| key.0.as_str());
    Client::with_url(server.url.clone(), key).map_err(|err| {
        eprintln!("legato: {err}");
        EXIT_USAGE
    })
}

/// What to say about a failure, and the exit code that goes with it. `id` is the track the
/// request was about, if any.
fn explain(err: &ClientError, id: Option<&str>) -> (String, u8) {
    let text = match err {
        ClientError::Api { code, .. } if code == "not-found" && id.is_some() => {
            format!("no track with id {}", id.unwrap_or_default())
        }
        ClientError::Api { status: 401, .. } => {
            format!("{err}; set --api-key or LEGATO_API_KEY")
        }
        ClientError::Unreachable { .. } => {
            format!("{err}; is `legato serve` running? set --url or LEGATO_URL")
        }
        _ => err.to_string(),
    };
    let code = if err.is_network() {
        EXIT_UNREACHABLE
    } else {
        EXIT_REFUSED
    };
    (text, code)
}

/// Writes results to stdout. A closed pipe (`legato ls | head -1`) is no reason to panic, as
/// `println!` would; what the reader did not want is dropped.
fn out(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_fmt(text).and_then(|()| stdout.flush());
}

/// Reports a failure on stderr and returns its exit code.
fn fail(err: &ClientError, id: Option<&str>) -> u8 {
    let (text, code) = explain(err, id);
    eprintln!("legato: {text}");
    code
}

/// A usage error found after parsing, reported the way clap reports its own.
fn usage_error(subcommand: &str, message: &str) -> u8 {
    // The client commands alone (they are `legato`'s top-level commands), so that this
    // module needs nothing of the whole command line.
    let mut command = ClientCommand::augment_subcommands(clap::Command::new("legato"));
    command.build();
    let error = match command.find_subcommand_mut(subcommand) {
        Some(sub) => sub.error(clap::error::ErrorKind::ArgumentConflict, message),
        None => command.error(clap::error::ErrorKind::ArgumentConflict, message),
    };
    let _ = error.print();
    EXIT_USAGE
}

async fn add(args: AddArgs) -> u8 {
    if args.name.is_some() && args.paths.len() > 1 {
        return usage_error(
            "add",
            &format!(
                "--name gives one track its title, so it takes a single FILE, not {}; add the files one by one to name each",
                args.paths.len()
            ),
        );
    }
    let client = match connect(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };

    // Every path is checked first, so a typo does not leave half of the files uploaded.
    let paths = args.paths.clone();
    let found = match tokio::task::spawn_blocking(move || import::find(&paths)).await {
        Ok(Ok(found)) => found,
        Ok(Err(errors)) => {
            for (path, reason) in errors {
                eprintln!("legato: {}: {reason}", shown(&path));
            }
            return EXIT_REFUSED;
        }
        Err(err) => {
            eprintln!("legato: looking for the files failed: {err}");
            return EXIT_REFUSED;
        }
    };
    if args.name.is_some() && found.folders {
        return usage_error(
            "add",
            "--name gives one track its title, so it takes a single FILE, not a folder",
        );
    }
    let started = std::time::Instant::now();
    let files = found.files;
    let jobs = usize::from(args.jobs);

    // One bar for the whole run, in bytes of all the files, and only on a terminal: elsewhere
    // (a log, a pipe, CI) it would be a stream of carriage returns, so one line per file is
    // printed instead.
    let tty = std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        Some(files.iter().map(|file| file.size).sum()),
        if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    )
    .with_style(bar_style());
    if tty {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    let mut report = Report::new(&files, &bar, tty);
    for (path, reason) in &found.unreadable {
        report.unreadable_entry(path, reason);
    }
    for (path, reason) in &found.skipped {
        report.skipped_entry(path, reason);
    }
    for (folder, art) in &found.art {
        report.art(folder, art);
    }
    // The server's upload limit, so that a file over it is refused here, before it is read
    // (hashing gigabytes the server will refuse is time lost); unknown, the server decides.
    let limit = client.upload_limit().await;

    // Files are looked at (audio? its hash) in order, a few at a time, and each distinct file
    // is sent once, `jobs` at a time: a copy of a file waits for the first one's track.
    let name = args.name.as_deref();
    let author = args.author.as_deref();
    let mut looks = futures_util::stream::iter(files.iter().cloned().enumerate())
        .map(|(index, candidate)| async move {
            let look = tokio::task::spawn_blocking(move || import::look(&candidate, limit))
                .await
                .unwrap_or_else(|err| Look::Unreadable(format!("reading it failed: {err}")));
            (index, look)
        })
        .buffered(jobs)
        .fuse();
    let mut uploads = FuturesUnordered::new();
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut copies: HashMap<usize, Vec<usize>> = HashMap::new();
    loop {
        tokio::select! {
            Some((index, look)) = looks.next(), if uploads.len() < jobs => match look {
                Look::Audio { sha256 } => match first_of.get(&sha256) {
                    Some(&first) => match report.fate(first) {
                        Some(fate) => {
                            let copy = fate.copied(first);
                            report.settle_unsent(index, copy);
                        }
                        None => copies.entry(first).or_default().push(index),
                    },
                    None => {
                        first_of.insert(sha256.clone(), index);
                        let (client, bar, candidate) = (&client, &bar, &files[index]);
                        uploads.push(async move {
                            let fate = send(client, candidate, &sha256, name, author, bar).await;
                            (index, fate)
                        });
                    }
                },
                Look::NotAudio(what) => report.settle_unsent(index, Fate::NotAudio(what)),
                Look::Unreadable(reason) => report.settle_unsent(index, Fate::Unreadable(reason)),
                Look::TooLarge { limit } => {
                    let refusal = Refusal::too_large(files[index].size, limit);
                    report.settle_unsent(index, Fate::Refused(refusal));
                }
            },
            Some((index, fate)) = uploads.next() => match fate {
                Ok(fate) => {
                    let copied: Vec<(usize, Fate)> = copies
                        .remove(&index)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|copy| (copy, fate.copied(index)))
                        .collect();
                    report.settle(index, fate);
                    for (copy, fate) in copied {
                        report.settle_unsent(copy, fate);
                    }
                }
                // Nothing else would fare better: no answer, or no access.
                Err(err) => {
                    bar.finish_and_clear();
                    return fail(&err, None);
                }
            },
            else => break,
        }
    }
    bar.finish_and_clear();
    report.finish(found.folders || files.len() > 1, started.elapsed())
}

/// Longest a file waits in all for a busy server (429) before it counts as refused.
const BUSY_PATIENCE: Duration = Duration::from_secs(600);

/// Uploads one file unless the server has it already. `Err` only for failures that stop the
/// whole command (no answer, no access).
async fn send(
    client: &Client,
    candidate: &Candidate,
    sha256: &str,
    name: Option<&str>,
    author: Option<&str>,
    bar: &ProgressBar,
) -> Result<Fate, ClientError> {
    // Asked first, so a re-run (an interrupted import resumed) sends no file twice. The
    // server also answers an upload of a file it has with that track, which covers what this
    // check cannot see (an older server, an upload racing this one).
    match client.find_by_sha256(sha256).await {
        Ok(Some(track)) if track.status() != Some("failed") => {
            bar.inc(candidate.size);
            return Ok(Fate::Stored(track));
        }
        Ok(_) => {}
        Err(err) if stops_everything(&err) => return Err(err),
        // Only a shortcut: the upload decides.
        Err(_) => {}
    }
    let mut waited = Duration::ZERO;
    let mut backoff = Duration::from_millis(250);
    let mut broken_off = 0;
    loop {
        let sent = Arc::new(AtomicU64::new(0));
        let on_progress = {
            let (bar, sent) = (bar.clone(), sent.clone());
            move |progress: Progress| {
                let before = sent.swap(progress.sent, Ordering::Relaxed);
                bar.inc(progress.sent.saturating_sub(before));
            }
        };
        let mut song = legato_client::Song::path(&candidate.path);
        if let Some(art) = &candidate.art {
            song = song.with_cover(art);
        }
        let result = client.add(song, name, author, on_progress).await;
        let sent = sent.load(Ordering::Relaxed);
        // A busy server answers 429 before reading the body and closes the connection, which
        // the sender may see as a broken pipe instead of the answer: that is tried again too,
        // a few times (the server's digest check keeps a retried upload from being stored twice).
        let broke_off = matches!(result, Err(ClientError::Transport { .. })) && broken_off < 5;
        if broke_off {
            broken_off += 1;
        }
        match result {
            Err(err) if (err.is_busy() || broke_off) && waited < BUSY_PATIENCE => {
                // The file goes again from its start.
                bar.set_position(bar.position().saturating_sub(sent));
                // Sooner than the server's hint at first: a processing slot frees as soon as
                // one upload ends, and the hint (5 s when every slot is taken) is for clients
                // with no better idea; a server that stays busy gets its hint.
                let pause = err.retry_after().map_or(backoff, |hint| hint.min(backoff));
                tokio::time::sleep(pause).await;
                waited += pause;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            result => {
                bar.inc(candidate.size.saturating_sub(sent));
                return match result {
                    Ok(track) if track.is_existing() => Ok(Fate::Stored(track)),
                    Ok(track) => Ok(Fate::Added(track)),
                    Err(err) if stops_everything(&err) => Err(err),
                    Err(ClientError::File { source, .. }) => {
                        Ok(Fate::Unreadable(io_reason(&source)))
                    }
                    Err(err) => Ok(Fate::Refused(Refusal::of(&err))),
                };
            }
        }
    }
}

/// No answer, or no access: every other file would fail the same way.
fn stops_everything(err: &ClientError) -> bool {
    err.is_network() || err.status() == Some(401)
}

/// What became of one file of `legato add`.
enum Fate {
    /// Uploaded: a new track.
    Added(Track),
    /// The server has this file already (it said so before or in answer to the upload).
    Stored(Track),
    /// The same bytes as file number `of` of this run: that file's track.
    Copy {
        of: usize,
        id: String,
    },
    /// Found in a folder, and not audio: what it looks like.
    NotAudio(String),
    Refused(Refusal),
    /// It could not be read here.
    Unreadable(String),
}

impl Fate {
    /// The fate of a copy of file number `first`, whose fate this is.
    fn copied(&self, first: usize) -> Fate {
        match self {
            Fate::Added(track) | Fate::Stored(track) => Fate::Copy {
                of: first,
                id: track.id.clone(),
            },
            Fate::Copy { id, .. } => Fate::Copy {
                of: first,
                id: id.clone(),
            },
            Fate::NotAudio(what) => Fate::NotAudio(what.clone()),
            Fate::Refused(refusal) => Fate::Refused(refusal.clone()),
            Fate::Unreadable(reason) => Fate::Unreadable(reason.clone()),
        }
    }

    /// The id of the file's track, if it has one.
    fn id(&self) -> Option<&str> {
        match self {
            Fate::Added(track) | Fate::Stored(track) => Some(&track.id),
            Fate::Copy { id, .. } => Some(id),
            Fate::NotAudio(_) | Fate::Refused(_) | Fate::Unreadable(_) => None,
        }
    }
}

/// Why the server refused a file.
#[derive(Clone)]
struct Refusal {
    /// As the file's own line says it.
    text: String,
    /// Status, code and message, for the summary.
    detail: String,
}

impl Refusal {
    /// A file larger than the server's upload limit: refused here, neither read nor sent,
    /// with the code the server would have answered.
    fn too_large(size: u64, limit: u64) -> Self {
        let why = format!(
            "larger than the server's upload limit ({} > {})",
            bytes(size),
            bytes(limit)
        );
        Self {
            text: format!("{why}; not sent (payload-too-large)"),
            detail: format!("payload-too-large: {why}; not read, not sent"),
        }
    }

    fn of(err: &ClientError) -> Self {
        let (text, _) = explain(err, None);
        let detail = match err {
            ClientError::Api {
                status,
                code,
                message,
                ..
            } => format!("{status} {code}: {message}"),
            other => other.to_string(),
        };
        Self { text, detail }
    }
}

/// What `legato add` tells as files are settled, and at the end.
struct Report<'a> {
    files: &'a [Candidate],
    fates: Vec<Option<Fate>>,
    bar: &'a ProgressBar,
    tty: bool,
    /// Files settled so far.
    settled: usize,
    /// Files whose id (if any) is on stdout: ids come out in the files' order.
    printed: usize,
    /// Entries of folders that could not be read.
    unreadable_entries: Vec<(PathBuf, String)>,
    /// Entries of folders that are not files (pipes, sockets, devices, linked folders).
    skipped_entries: Vec<(PathBuf, String)>,
}

impl<'a> Report<'a> {
    fn new(files: &'a [Candidate], bar: &'a ProgressBar, tty: bool) -> Self {
        let report = Self {
            files,
            fates: files.iter().map(|_| None).collect(),
            bar,
            tty,
            settled: 0,
            printed: 0,
            unreadable_entries: Vec::new(),
            skipped_entries: Vec::new(),
        };
        report.show_count();
        report
    }

    fn fate(&self, index: usize) -> Option<&Fate> {
        self.fates.get(index).and_then(Option::as_ref)
    }

    fn unreadable_entry(&mut self, path: &Path, reason: &str) {
        self.bar
            .suspend(|| eprintln!("legato: {}: {reason}", shown(path)));
        self.unreadable_entries
            .push((path.to_path_buf(), reason.to_owned()));
    }

    /// A folder's art, once per folder: it is no failure and no "not audio".
    fn art(&self, folder: &Path, art: &Path) {
        let name = art.file_name().map(Path::new).unwrap_or(art);
        self.bar.suspend(|| {
            eprintln!(
                "{}: art {}, sent as the cover of its tracks (a cover in a file's tags wins)",
                shown(folder),
                shown(name)
            );
        });
    }

    /// An entry of a folder that is not a file: said at once, on a terminal too (nothing
    /// else would tell it was passed over), and again in the summary.
    fn skipped_entry(&mut self, path: &Path, reason: &str) {
        self.bar
            .suspend(|| eprintln!("{}: skipped, {reason}", shown(path)));
        self.skipped_entries
            .push((path.to_path_buf(), reason.to_owned()));
    }

    /// Settles a file that was not sent: its bytes count as done.
    fn settle_unsent(&mut self, index: usize, fate: Fate) {
        self.bar.inc(self.files[index].size);
        self.settle(index, fate);
    }

    fn settle(&mut self, index: usize, fate: Fate) {
        let file = &self.files[index];
        let path = shown(&file.path);
        // On a terminal the bar shows how far a folder is; only the files named on the
        // command line, and the problems, get a line there. Off one, every file does.
        let quiet = self.tty && !file.named;
        let line = match &fate {
            Fate::Added(track) => {
                (!quiet).then(|| format!("{path}: added as {} ({})", track.id, summary(track)))
            }
            Fate::Stored(track) => {
                (!quiet).then(|| format!("{path}: already stored as {}", track.id))
            }
            Fate::Copy { of, id } => (!quiet).then(|| {
                format!(
                    "{path}: already stored as {id} (the same file as {})",
                    shown(&self.files[*of].path)
                )
            }),
            Fate::NotAudio(what) => {
                (!quiet).then(|| format!("{path}: skipped, not audio ({what})"))
            }
            Fate::Refused(refusal) => Some(format!("legato: {path}: {}", refusal.text)),
            Fate::Unreadable(reason) => Some(format!("legato: {path}: {reason}")),
        };
        self.fates[index] = Some(fate);
        self.settled += 1;
        let mut ids = String::new();
        while let Some(Some(fate)) = self.fates.get(self.printed) {
            if let Some(id) = fate.id() {
                ids.push_str(id);
                ids.push('\n');
            }
            self.printed += 1;
        }
        self.bar.suspend(|| {
            if !ids.is_empty() {
                out(format_args!("{ids}"));
            }
            if let Some(line) = line {
                eprintln!("{line}");
            }
        });
        self.show_count();
    }

    fn show_count(&self) {
        self.bar
            .set_message(format!("{}/{} files", self.settled, self.files.len()));
    }

    /// Prints the summary (for more than one file) and returns the exit code.
    fn finish(self, summarise: bool, elapsed: Duration) -> u8 {
        let (mut added, mut stored, mut copies, mut not_audio) = (0, 0, 0, 0);
        let mut refused = Vec::new();
        let mut unreadable = self.unreadable_entries;
        for (file, fate) in self.files.iter().zip(&self.fates) {
            match fate {
                Some(Fate::Added(_)) => added += 1,
                Some(Fate::Stored(_)) => stored += 1,
                Some(Fate::Copy { .. }) => copies += 1,
                Some(Fate::NotAudio(_)) => not_audio += 1,
                Some(Fate::Refused(refusal)) => refused.push((&file.path, &refusal.detail)),
                Some(Fate::Unreadable(reason)) => {
                    unreadable.push((file.path.clone(), reason.clone()))
                }
                None => {}
            }
        }
        if summarise {
            let unreadable_count = if unreadable.is_empty() {
                String::new()
            } else {
                format!(", {} unreadable", unreadable.len())
            };
            let skipped = &self.skipped_entries;
            let skipped_count = if skipped.is_empty() {
                String::new()
            } else {
                format!(", {} skipped", skipped.len())
            };
            eprintln!(
                "legato: {}: {added} added, {stored} already stored, {}, {not_audio} not audio, {} refused{unreadable_count}{skipped_count} ({:.1} s)",
                count(self.files.len(), "file"),
                count(copies, "duplicate"),
                refused.len(),
                elapsed.as_secs_f64()
            );
            for (path, detail) in &refused {
                eprintln!("legato: refused {}: {detail}", shown(path));
            }
            for (path, reason) in &unreadable {
                eprintln!("legato: unreadable {}: {reason}", shown(path));
            }
            for (path, reason) in skipped {
                eprintln!("legato: skipped {}: {reason}", shown(path));
            }
        }
        if refused.is_empty() && unreadable.is_empty() {
            0
        } else {
            EXIT_REFUSED
        }
    }
}

async fn get(args: GetArgs) -> u8 {
    let client = match connect(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };
    if args.output.as_deref() == Some(Path::new("-")) {
        let mut stdout = match stdout_file() {
            Ok(file) => file,
            Err(err) => {
                eprintln!("legato: cannot write to stdout: {}", io_reason(&err));
                return EXIT_REFUSED;
            }
        };
        return match client.download(&args.id, &mut stdout, |_| {}).await {
            Ok(original) => {
                eprintln!(
                    "{}: {} ({}), sha256 {}",
                    args.id,
                    import::printable(original.file_name.as_bytes()),
                    bytes(original.size),
                    original.sha256
                );
                0
            }
            Err(err) => fail(&err, Some(&args.id)),
        };
    }

    // The bytes go to a temporary file beside the destination, renamed into place only once
    // whole and verified: an interrupted download never leaves a truncated file under the
    // real name.
    let folder = match args.output.as_deref().map(Path::parent) {
        Some(Some(parent)) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let partial = match tempfile::Builder::new()
        .prefix(".legato-get-")
        .tempfile_in(&folder)
    {
        Ok(file) => file,
        Err(err) => {
            eprintln!("legato: {}: {}", shown(&folder), io_reason(&err));
            return EXIT_REFUSED;
        }
    };
    let mut file = match partial.reopen() {
        Ok(file) => tokio::fs::File::from_std(file),
        Err(err) => {
            eprintln!("legato: {}: {}", shown(partial.path()), io_reason(&err));
            return EXIT_REFUSED;
        }
    };
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
            .with_style(bar_style())
            .with_prefix(args.id.clone())
            .with_message("downloading")
    } else {
        ProgressBar::hidden()
    };
    let on_progress = {
        let bar = bar.clone();
        move |received: legato_client::Received| {
            if let Some(total) = received.total {
                bar.set_length(total);
            }
            bar.set_position(received.received);
        }
    };
    let original = match client.download(&args.id, &mut file, on_progress).await {
        Ok(original) => original,
        Err(err) => {
            bar.finish_and_clear();
            return fail(&err, Some(&args.id));
        }
    };
    bar.finish_and_clear();
    drop(file);
    // A temporary file is private (0600); the downloaded song is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(partial.path(), std::fs::Permissions::from_mode(0o644));
    }

    let destination = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&original.file_name));
    let placed = if args.force {
        partial.persist(&destination).map(|_| ())
    } else {
        partial.persist_noclobber(&destination).map(|_| ())
    };
    if let Err(err) = placed {
        let reason = if err.error.kind() == std::io::ErrorKind::AlreadyExists {
            "exists already; use --force to replace it, or -o FILE".to_owned()
        } else {
            io_reason(&err.error)
        };
        eprintln!("legato: {}: {reason}", shown(&destination));
        return EXIT_REFUSED;
    }
    out(format_args!("{}\n", destination.display()));
    eprintln!(
        "{}: saved as {} ({}), sha256 {}",
        args.id,
        shown(&destination),
        bytes(original.size),
        original.sha256
    );
    0
}

/// Standard output as an asynchronous file (a duplicate of its descriptor), for streaming a
/// download there without holding it in memory.
fn stdout_file() -> std::io::Result<tokio::fs::File> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
    Ok(tokio::fs::File::from_std(std::fs::File::from(fd)))
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// `1 file`, `2 files`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `0:12, 2 segments`: what a finished upload produced.
fn summary(track: &Track) -> String {
    let mut text = track.duration.map(clock).unwrap_or_else(|| "?".to_owned());
    if let Some(segments) = track.segments {
        let plural = if segments == 1 { "" } else { "s" };
        let _ = write!(text, ", {segments} segment{plural}");
    }
    text
}

async fn ls(args: LsArgs) -> u8 {
    let client = match connect(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let params = ListParams {
        query: args.query.clone(),
        limit: args.limit,
        offset: args.offset,
        ..ListParams::default()
    };
    let (tracks, total) = match client.list(&params).await {
        Ok(page) => page,
        Err(err) => return fail(&err, None),
    };
    if args.json {
        return print_json(serde_json::to_string_pretty(&tracks));
    }
    if !tracks.is_empty() {
        out(format_args!("{}", table(&tracks)));
    }
    let offset = args.offset.unwrap_or(0);
    let from = if offset > 0 && !tracks.is_empty() {
        format!(" (from #{})", offset + 1)
    } else {
        String::new()
    };
    let noun = if total == 1 { "track" } else { "tracks" };
    out(format_args!("{} of {total} {noun}{from}\n", tracks.len()));
    0
}

/// Prints JSON made by `serde_json::to_string_pretty`.
fn print_json(json: serde_json::Result<String>) -> u8 {
    match json {
        Ok(text) => {
            out(format_args!("{text}\n"));
            0
        }
        Err(err) => {
            eprintln!("legato: cannot print the answer as JSON: {err}");
            EXIT_REFUSED
        }
    }
}

/// The `ls` table: id, title, artist, duration (m:ss), added.
fn table(tracks: &[Track]) -> String {
    let header = ["ID", "TITLE", "ARTIST", "DURATION", "ADDED"].map(str::to_owned);
    let rows: Vec<[String; 5]> = tracks
        .iter()
        .map(|track| {
            [
                track.id.clone(),
                fit(&track.name, MAX_CELL_WIDTH),
                fit(&track.author, MAX_CELL_WIDTH),
                track.duration.map(clock).unwrap_or_default(),
                track.created_at.as_deref().map(when).unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
            let pad = " ".repeat(width - cell.width());
            if column > 0 {
                line.push_str("  ");
            }
            // Durations line up on the right, like numbers do.
            if column == 3 {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `text` cut to `max` terminal columns, with `…` where it was cut; control characters are
/// shown as spaces so a title cannot move the cursor.
fn fit(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.width() <= max {
        return clean;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in clean.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Seconds as `m:ss`, or `h:mm:ss` from an hour on.
fn clock(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        // Rounded to the nearest second; a track is never hours past u64.
        seconds.round() as u64
    } else {
        0
    };
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `2026-11-28T20:30:00Z` as `2026-11-28 20:30`; anything else as it is.
fn when(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(10..11), rfc3339.get(11..16)) {
        (Some(date), Some("T"), Some(time)) => format!("{date} {time}"),
        _ => rfc3339.to_owned(),
    }
}

fn bytes(size: u64) -> String {
    const KIB: f64 = 1024.0;
    let size_f = size as f64;
    if size_f >= KIB * KIB * KIB {
        format!("{:.1} GiB", size_f / (KIB * KIB * KIB))
    } else if size_f >= KIB * KIB {
        format!("{:.1} MiB", size_f / (KIB * KIB))
    } else if size_f >= KIB {
        format!("{:.1} KiB", size_f / KIB)
    } else {
        format!("{size} B")
    }
}

/// `show`'s and `edit`'s description of a track: one `key  value` line per field known.
fn describe(track: &Track, playlist: &str) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("id", track.id.clone()),
        ("title", fit(&track.name, usize::MAX)),
        ("artist", fit(&track.author, usize::MAX)),
    ];
    if let Some(duration) = track.duration {
        lines.push(("duration", format!("{} ({duration} s)", clock(duration))));
    }
    if let Some(segments) = track.segments {
        lines.push(("segments", segments.to_string()));
    }
    let audio: Vec<String> = [
        track.codec.clone(),
        track.bitrate.map(|b| format!("{b} kbit/s")),
        track.sample_rate.map(|r| format!("{r} Hz")),
        track.channels.map(|c| match c {
            1 => "mono".to_owned(),
            2 => "stereo".to_owned(),
            n => format!("{n} channels"),
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !audio.is_empty() {
        lines.push(("audio", audio.join(", ")));
    }
    if let Some(size) = track.size {
        lines.push(("size", bytes(size)));
    }
    if let Some(created) = &track.created_at {
        lines.push(("added", format!("{} UTC", when(created))));
    }
    lines.push(("playlist", playlist.to_owned()));
    let mut out = String::new();
    for (key, value) in lines {
        let _ = writeln!(out, "{key:<9} {value}");
    }
    for (key, value) in &track.extra {
        let _ = writeln!(out, "{:<9} {value}", fit(key, 30));
    }
    out
}

async fn show(args: ShowArgs) -> u8 {
    let client = match connect(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };
    match client.get(&args.id).await {
        Ok(track) if args.json => print_json(serde_json::to_string_pretty(&track)),
        Ok(track) => {
            out(format_args!(
                "{}",
                describe(&track, &client.playlist_url_of(&track))
            ));
            0
        }
        Err(err) => fail(&err, Some(&args.id)),
    }
}

async fn edit(args: EditArgs) -> u8 {
    let client = match connect(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };
    match client
        .update(&args.id, args.name.as_deref(), args.author.as_deref())
        .await
    {
        Ok(track) => {
            out(format_args!(
                "{}",
                describe(&track, &client.playlist_url_of(&track))
            ));
            0
        }
        Err(err) => fail(&err, Some(&args.id)),
    }
}

async fn rm(args: RmArgs) -> u8 {
    let client = match connect(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let mut refused = false;
    for id in &args.ids {
        match client.delete(id).await {
            Ok(()) => out(format_args!("deleted {id}\n")),
            Err(err) if err.is_network() => return fail(&err, Some(id)),
            Err(err) => {
                fail(&err, Some(id));
                refused = true;
            }
        }
    }
    if refused { EXIT_REFUSED } else { 0 }
}

/// Tracks asked for per page of `reprocess --all`.
const REPROCESS_PAGE: u32 = 500;

async fn reprocess(args: ReprocessArgs) -> u8 {
    let client = match connect(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let ids = if args.all {
        // Ids first, then requests: queuing does not change the list's order (oldest
        // first), but collecting first keeps the paging independent of what the server does.
        let mut ids = Vec::new();
        loop {
            let params = ListParams {
                limit: Some(REPROCESS_PAGE),
                offset: Some(ids.len() as u64),
                ..ListParams::default()
            };
            let (page, total) = match client.list(&params).await {
                Ok(page) => page,
                Err(err) => return fail(&err, None),
            };
            let last = page.len() < REPROCESS_PAGE as usize;
            ids.extend(page.into_iter().map(|t| t.id));
            if last || ids.len() as u64 >= total {
                break;
            }
        }
        ids
    } else {
        args.ids.clone()
    };
    let (mut queued, mut refused) = (0_usize, 0_usize);
    for id in &ids {
        match client.reprocess(id).await {
            Ok(track) => {
                queued += 1;
                let state = track
                    .extra
                    .get("job")
                    .and_then(|job| job.get("state"))
                    .and_then(|s| s.as_str())
                    .unwrap_or("queued");
                out(format_args!(
                    "{id}  {state}  {}\n",
                    if track.name.is_empty() {
                        "-"
                    } else {
                        &track.name
                    }
                ));
            }
            Err(err) if err.is_network() => return fail(&err, Some(id)),
            Err(err) => {
                let (text, _) = explain(&err, Some(id));
                eprintln!("legato: {id}: {text}");
                refused += 1;
            }
        }
    }
    let noun = if queued == 1 { "track" } else { "tracks" };
    eprintln!(
        "legato: {queued} {noun} queued for reprocessing{}",
        if refused > 0 {
            format!(", {refused} refused")
        } else {
            String::new()
        }
    );
    if refused > 0 { EXIT_REFUSED } else { 0 }
}

async fn url(args: UrlArgs) -> u8 {
    let client = match connect(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };
    match client.get(&args.id).await {
        Ok(track) => {
            out(format_args!("{}\n", client.playlist_url_of(&track)));
            0
        }
        Err(err) => fail(&err, Some(&args.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(clock(0.0), "0:00");
        assert_eq!(clock(12.016), "0:12");
        assert_eq!(clock(59.6), "1:00");
        assert_eq!(clock(240.013), "4:00");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(f64::NAN), "0:00");
        assert_eq!(clock(-3.0), "0:00");
    }

    #[test]
    fn timestamps_shorten_to_minutes() {
        assert_eq!(when("2026-11-28T20:30:00Z"), "2026-11-28 20:30");
        assert_eq!(when("yesterday"), "yesterday");
        assert_eq!(when("2026-11-28é"), "2026-11-28é");
    }

    #[test]
    fn long_and_wide_text_is_cut_to_width() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("abcdefghijkl", 6), "abcde…");
        assert_eq!(fit("日本語の歌", 6), "日本…");
        assert_eq!(fit("a\u{1b}[2Jb", 10), "a [2Jb");
    }

    #[test]
    fn the_table_aligns_columns_and_right_aligns_durations() {
        let track = |id: &str, name: &str, duration: f64| Track {
            id: id.to_owned(),
            name: name.to_owned(),
            author: "A".to_owned(),
            duration: Some(duration),
            segments: None,
            playlist: None,
            codec: None,
            bitrate: None,
            sample_rate: None,
            channels: None,
            size: None,
            created_at: Some("2026-11-28T20:30:00Z".to_owned()),
            source: None,
            extra: serde_json::Map::new(),
        };
        let text = table(&[track("a1", "One", 12.0), track("b2", "Longer", 725.0)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID  TITLE   ARTIST  DURATION  ADDED");
        assert_eq!(lines[1], "a1  One     A           0:12  2026-11-28 20:30");
        assert_eq!(lines[2], "b2  Longer  A          12:05  2026-11-28 20:30");
    }

    #[test]
    fn sizes_are_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(192_000), "187.5 KiB");
        assert_eq!(bytes(3_840_209), "3.7 MiB");
    }
}
