//! The command-line client: `legato add | ls | show | edit | rm | url | get | reprocess`, talking to a Legato
//! server over HTTP through `legato-client`.
//!
//! The contract with people and scripts: results go to stdout (`add` prints only the new ids,
//! one per line, so `ids=$(legato add *.mp3)` works), progress and errors go to stderr, errors
//! start with `legato: `. Exit codes: 0 success; 1 the server refused something (or a local
//! file is missing); 2 a usage error (clap's); 3 no answer from the server. Commands over
//! several items (`add`, `rm`, `reprocess`) go on after a refusal and exit 1 at the end, but stop at once
//! when the server cannot be reached.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use legato_client::{Client, ClientError, ListParams, Progress, ServerUrl, Track};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The server refused a request, or a local file cannot be read.
const EXIT_REFUSED: u8 = 1;
/// A usage error, as clap exits on its own.
const EXIT_USAGE: u8 = 2;
/// The server did not answer.
const EXIT_UNREACHABLE: u8 = 3;

/// Uploads in flight at once: enough to overlap one upload with the server's packaging of
/// the previous one, few enough not to crowd a small server.
const PARALLEL_UPLOADS: usize = 2;

/// Widest title or artist shown in the `ls` table; `show` has the full text.
const MAX_CELL_WIDTH: usize = 40;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Upload audio files as new tracks; prints each new id on its own line.
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
    /// Audio files to upload (MP3).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Title of the track; only with a single FILE (default: the file's name).
    #[arg(long)]
    name: Option<String>,
    /// Artist of the tracks.
    #[arg(long)]
    author: Option<String>,
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
    use clap::CommandFactory;
    let mut command = crate::cli::Cli::command();
    command.build();
    let error = match command.find_subcommand_mut(subcommand) {
        Some(sub) => sub.error(clap::error::ErrorKind::ArgumentConflict, message),
        None => command.error(clap::error::ErrorKind::ArgumentConflict, message),
    };
    let _ = error.print();
    EXIT_USAGE
}

async fn add(args: AddArgs) -> u8 {
    if args.name.is_some() && args.files.len() > 1 {
        return usage_error(
            "add",
            &format!(
                "--name gives one track its title, so it takes a single FILE, not {}; add the files one by one to name each",
                args.files.len()
            ),
        );
    }
    let client = match connect(&args.server) {
        Ok(client) => client,
        Err(code) => return code,
    };

    // Every file is checked first, so a typo does not leave half of the files uploaded.
    let mut sizes = Vec::with_capacity(args.files.len());
    let mut unreadable = false;
    for file in &args.files {
        match std::fs::metadata(file) {
            Ok(meta) if meta.is_file() => sizes.push(meta.len()),
            Ok(_) => {
                eprintln!("legato: {}: not a file", file.display());
                unreadable = true;
            }
            Err(err) => {
                eprintln!("legato: {}: {}", file.display(), io_reason(&err));
                unreadable = true;
            }
        }
    }
    if unreadable {
        return EXIT_REFUSED;
    }

    // Bars only on a terminal: elsewhere (a log, a pipe, CI) they would be a stream of
    // carriage returns, so one line per finished file is printed instead.
    let tty = std::io::stderr().is_terminal();
    let bars = MultiProgress::with_draw_target(if tty {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = bar_style();
    let name = args.name.as_deref();
    let author = args.author.as_deref();
    let uploads = args.files.iter().zip(sizes).map(|(file, size)| {
        let (client, bars, style) = (&client, &bars, &style);
        async move {
            let bar = bars.add(
                ProgressBar::new(size)
                    .with_style(style.clone())
                    // A bar dropped unfinished (an upload stopped early) leaves nothing behind.
                    .with_finish(ProgressFinish::AndClear)
                    .with_prefix(short_name(file))
                    .with_message("uploading"),
            );
            if tty {
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            let on_progress = {
                let bar = bar.clone();
                move |progress: Progress| {
                    bar.set_position(progress.sent);
                    if progress.is_done() {
                        bar.set_message("processing");
                    }
                }
            };
            let result = client.add(file.as_path(), name, author, on_progress).await;
            bar.finish_and_clear();
            bars.remove(&bar);
            (file, result)
        }
    });
    // `buffered` keeps the files' order, so the ids come out in the order of the arguments.
    let mut uploads = futures_util::stream::iter(uploads).buffered(PARALLEL_UPLOADS);
    let mut refused = false;
    while let Some((file, result)) = uploads.next().await {
        match result {
            Ok(track) => bars.suspend(|| {
                out(format_args!("{}\n", track.id));
                eprintln!(
                    "{}: added as {} ({})",
                    file.display(),
                    track.id,
                    summary(&track)
                );
            }),
            // Nothing else would fare better: no answer, or no access.
            Err(err) if err.is_network() || err.status() == Some(401) => {
                let code = bars.suspend(|| fail(&err, None));
                return code;
            }
            Err(err) => bars.suspend(|| {
                let (text, _) = explain(&err, None);
                if matches!(err, ClientError::File { .. }) {
                    // The message names the file already.
                    eprintln!("legato: {text}");
                } else {
                    eprintln!("legato: {}: {text}", file.display());
                }
                refused = true;
            }),
        }
    }
    if refused { EXIT_REFUSED } else { 0 }
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
                    original.file_name,
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
            eprintln!("legato: {}: {}", folder.display(), io_reason(&err));
            return EXIT_REFUSED;
        }
    };
    let mut file = match partial.reopen() {
        Ok(file) => tokio::fs::File::from_std(file),
        Err(err) => {
            eprintln!("legato: {}: {}", partial.path().display(), io_reason(&err));
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
        eprintln!("legato: {}: {reason}", destination.display());
        return EXIT_REFUSED;
    }
    out(format_args!("{}\n", destination.display()));
    eprintln!(
        "{}: saved as {} ({}), sha256 {}",
        args.id,
        destination.display(),
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
    ProgressStyle::with_template(
        "{spinner} {prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The file's name, cut to fit a progress bar line.
fn short_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    fit(&name, 30)
}

/// The operating system's reason without the `(os error N)` noise.
fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
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
