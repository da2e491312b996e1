//! The private PostgreSQL cluster `hotlined` runs when no `database.url` is configured (and
//! that the tests run): finds the machine's server binaries, runs `initdb` once, starts
//! `postgres` listening only on a unix socket inside the cluster folder, waits until it
//! accepts connections and stops it with a fast shutdown.
//!
//! As root, the server runs as the `postgres` system user (PostgreSQL refuses root). The
//! server dies with the thread that started it (parent-death signal), so a crashed daemon or
//! test run leaves no server behind. The daemon hands the running cluster to a supervisor
//! ([`EmbeddedPostgres::supervise`]) that restarts the server whenever it exits. Owns the server process; must not run queries beyond
//! creating databases.

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The socket "port": only names the socket file, the folder is private.
const PORT: u16 = 5432;
/// The cluster's superuser.
const SUPERUSER: &str = "postgres";
/// Unix socket paths longer than this do not fit `sockaddr_un`.
const MAX_SOCKET_PATH: usize = 107;

/// Whether the cluster must survive a power cut (the daemon) or not (tests: faster).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Durable,
    Throwaway,
}

/// Why the private cluster could not start or stop; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no PostgreSQL server found (looked for initdb and postgres in {looked}): install it \
         with `apt-get install postgresql`, or set database.url to a PostgreSQL server you run"
    )]
    NotInstalled { looked: String },
    #[error("{0}")]
    Failed(String),
}

fn failed(what: impl std::fmt::Display, err: impl std::fmt::Display) -> EmbeddedError {
    EmbeddedError::Failed(format!("{what}: {err}"))
}

/// A running private cluster.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    root: PathBuf,
    postmaster: Child,
    /// What restarting the server needs.
    bindir: PathBuf,
    user: Option<ServerUser>,
    durability: Durability,
}

/// A cluster whose server is restarted whenever it exits; see [`EmbeddedPostgres::supervise`].
#[derive(Debug)]
pub struct SupervisedPostgres {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<EmbeddedPostgres>,
}

impl SupervisedPostgres {
    /// Ends supervision, then stops the server (fast shutdown).
    pub async fn stop(self) -> Result<(), EmbeddedError> {
        let _ = self.stop.send(());
        let cluster = self
            .task
            .await
            .map_err(|e| failed("the private PostgreSQL's supervisor failed", e))?;
        cluster.stop().await
    }
}

/// How often the supervisor looks whether the server still runs.
const SUPERVISE_INTERVAL: Duration = Duration::from_millis(500);

/// How the supervisor retries: the first restart waits `backoff_min`, each failed one
/// doubles the wait up to `backoff_max`; from `loud_after_failures` failed restarts in a row
/// each failure is logged as an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisePolicy {
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub loud_after_failures: u32,
}

impl Default for SupervisePolicy {
    /// 1 s doubling up to 60 s; loud from the third failure.
    fn default() -> Self {
        SupervisePolicy {
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            loud_after_failures: 3,
        }
    }
}

/// The supervisor: watches the server and restarts it until `stopped`; returns the cluster
/// for the final stop.
async fn supervise(
    mut cluster: EmbeddedPostgres,
    policy: SupervisePolicy,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) -> EmbeddedPostgres {
    loop {
        tokio::select! {
            _ = &mut stopped => return cluster,
            () = tokio::time::sleep(SUPERVISE_INTERVAL) => {}
        }
        let status = match cluster.postmaster.try_wait() {
            Ok(Some(status)) => status,
            _ => continue,
        };
        tracing::warn!(
            %status,
            log = %cluster.root.join("server.log").display(),
            "the private PostgreSQL exited; restarting it (calls go on and their records are \
             spooled meanwhile)"
        );
        let mut delay = policy.backoff_min;
        let mut failures = 0u32;
        loop {
            // A stop during the wait or the restart returns at once; a server the restart
            // already spawned is in `cluster` and gets stopped with it.
            let restarted = tokio::select! {
                _ = &mut stopped => return cluster,
                restarted = async {
                    tokio::time::sleep(delay).await;
                    cluster.restart().await
                } => restarted,
            };
            match restarted {
                Ok(()) => {
                    tracing::warn!(
                        attempt = failures + 1,
                        pid = cluster.pid(),
                        "the private PostgreSQL is restarted and accepts connections"
                    );
                    break;
                }
                Err(error) => {
                    failures += 1;
                    delay = (delay * 2).min(policy.backoff_max);
                    if failures >= policy.loud_after_failures {
                        tracing::error!(
                            attempts = failures,
                            retry_in_secs = delay.as_secs(),
                            %error,
                            "THE PRIVATE POSTGRESQL KEEPS FAILING TO RESTART: calls are still \
                             answered and their records spooled, but tickets cannot be read or \
                             written; check its log ({}), free disk space and the data folder",
                            cluster.root.join("server.log").display()
                        );
                    } else {
                        tracing::warn!(
                            attempt = failures,
                            retry_in_secs = delay.as_secs(),
                            %error,
                            "restarting the private PostgreSQL failed; trying again"
                        );
                    }
                }
            }
        }
    }
}

/// The system user the server runs as when we are root.
#[derive(Debug, Clone, Copy)]
struct ServerUser {
    uid: u32,
    gid: u32,
}

impl EmbeddedPostgres {
    /// Starts (creating on first use) the cluster in `root` (`root/data` holds the data,
    /// `root/server.log` the server's log, the socket lives in `root`).
    ///
    /// Call it from a thread that lives as long as the cluster should: the server gets a
    /// fast-shutdown signal when that thread ends.
    pub async fn start(root: &Path, durability: Durability) -> Result<Self, EmbeddedError> {
        let bindir = find_bindir()?;
        let user = server_user()?;
        let root = std::path::absolute(root)
            .map_err(|e| failed(format!("resolving {}", root.display()), e))?;
        prepare_root(&root, user)?;
        let socket_len = root.join(format!(".s.PGSQL.{PORT}.lock")).as_os_str().len();
        if socket_len > MAX_SOCKET_PATH {
            return Err(EmbeddedError::Failed(format!(
                "the database folder {} is too deep for a unix socket path ({socket_len} > \
                 {MAX_SOCKET_PATH} bytes): choose a shorter daemon.state_dir",
                root.display()
            )));
        }
        let data = root.join("data");
        if !data.join("PG_VERSION").exists() {
            init_cluster(&bindir, &root, &data, user, durability).await?;
        }
        let postmaster = spawn_postmaster(&bindir, &root, user, durability)?;
        let mut cluster = EmbeddedPostgres {
            root,
            postmaster,
            bindir,
            user,
            durability,
        };
        cluster.wait_until_ready().await?;
        Ok(cluster)
    }

    /// Starts the server again after it exited, and waits until it accepts connections.
    async fn restart(&mut self) -> Result<(), EmbeddedError> {
        self.postmaster = spawn_postmaster(&self.bindir, &self.root, self.user, self.durability)?;
        self.wait_until_ready().await
    }

    /// Hands the cluster to a supervisor task that restarts the server whenever it exits
    /// (stopped by hand, killed, crashed), with backoff, logging each restart, and loudly
    /// when restarts keep failing ([`SupervisePolicy::default`]). Stop it with
    /// [`SupervisedPostgres::stop`].
    ///
    /// Call it inside the multi-threaded tokio runtime that lives as long as the cluster:
    /// a restarted server gets its fast-shutdown signal when the runtime's worker thread
    /// that started it ends.
    pub fn supervise(self) -> SupervisedPostgres {
        self.supervise_with(SupervisePolicy::default())
    }

    /// [`EmbeddedPostgres::supervise`] with its own backoff and loudness (tests use short
    /// waits). The supervisor logs to the subscriber current here.
    pub fn supervise_with(self, policy: SupervisePolicy) -> SupervisedPostgres {
        use tracing::instrument::WithSubscriber;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        SupervisedPostgres {
            stop,
            task: tokio::spawn(supervise(self, policy, stopped).with_current_subscriber()),
        }
    }

    async fn wait_until_ready(&mut self) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.postmaster.try_wait() {
                return Err(EmbeddedError::Failed(format!(
                    "PostgreSQL exited at start ({status}); its log {} ends with:\n{}",
                    self.root.join("server.log").display(),
                    log_tail(&self.root.join("server.log"))
                )));
            }
            let attempt = PgConnection::connect_with(&self.connect_options(SUPERUSER)).await;
            match attempt {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(err) if Instant::now() > deadline => {
                    return Err(EmbeddedError::Failed(format!(
                        "PostgreSQL did not accept connections within 60 s ({err}); see {}",
                        self.root.join("server.log").display()
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// How to reach `database` in this cluster.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.root)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// Creates `database` unless it exists. The name must be lowercase letters, digits and
    /// underscores.
    pub async fn create_database(&self, database: &str) -> Result<(), EmbeddedError> {
        if database.is_empty()
            || !database
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(EmbeddedError::Failed(format!(
                "database name {database:?}: use lowercase letters, digits and _"
            )));
        }
        let mut conn = PgConnection::connect_with(&self.connect_options(SUPERUSER))
            .await
            .map_err(|e| failed("connecting to the private PostgreSQL", e))?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(database)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| failed("listing databases", e))?;
        if !exists {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                .execute(&mut conn)
                .await
                .map_err(|e| failed(format!("creating database {database}"), e))?;
        }
        let _ = conn.close().await;
        Ok(())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.postmaster.id()
    }

    /// Fast shutdown: ends sessions, checkpoints, exits. Falls back to an immediate shutdown
    /// after 60 s.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        signal(&self.postmaster, libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.postmaster.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() > deadline => {
                    signal(&self.postmaster, libc::SIGQUIT);
                    return self
                        .postmaster
                        .wait()
                        .map(drop)
                        .map_err(|e| failed("waiting for PostgreSQL to stop", e));
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => return Err(failed("waiting for PostgreSQL to stop", e)),
            }
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        // Not stopped explicitly (an early error path): ask for a fast shutdown, do not wait.
        if let Ok(None) = self.postmaster.try_wait() {
            signal(&self.postmaster, libc::SIGINT);
        }
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on our own unreaped child's pid; no memory is touched.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Spawns the server (`postgres`) on the cluster in `root`, logging to `root/server.log`.
fn spawn_postmaster(
    bindir: &Path,
    root: &Path,
    user: Option<ServerUser>,
    durability: Durability,
) -> Result<Child, EmbeddedError> {
    let log_path = root.join("server.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| failed(format!("opening {}", log_path.display()), e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| failed(format!("opening {}", log_path.display()), e))?;
    let mut command = server_command(&bindir.join("postgres"), root, user);
    command
        .arg("-D")
        .arg(root.join("data"))
        .arg("-k")
        .arg(root)
        .arg("-p")
        .arg(PORT.to_string())
        .args([
            "-c",
            "listen_addresses=",
            "-c",
            "unix_socket_permissions=0700",
        ]);
    if durability == Durability::Throwaway {
        command.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    }
    // Own process group: a Ctrl-C in the terminal reaches only the daemon, which then
    // stops the server after its own graceful shutdown.
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    die_with_parent(&mut command);
    command
        .spawn()
        .map_err(|e| failed(format!("starting {}", bindir.join("postgres").display()), e))
}

/// The server gets a fast-shutdown signal when the thread that spawned it ends.
fn die_with_parent(command: &mut Command) {
    // SAFETY: getpid is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: runs in the forked child before exec (after the uid switch, which would clear
    // the setting); prctl and getppid are async-signal-safe and allocate nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the starting process already exited"));
            }
            Ok(())
        });
    }
}

/// A command that runs as the server user when we are root, from inside the cluster folder
/// (the server user may not be able to read our working directory).
fn server_command(program: &Path, root: &Path, user: Option<ServerUser>) -> Command {
    let mut command = Command::new(program);
    command.current_dir(root);
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
    }
    command
}

/// The folder of `initdb` and `postgres`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_bindir() -> Result<PathBuf, EmbeddedError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let mut looked = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
        looked.push(dir.display().to_string());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, dir)) => Ok(dir),
        None => {
            looked.push("/usr/lib/postgresql/*/bin".into());
            Err(EmbeddedError::NotInstalled {
                looked: looked.join(", "),
            })
        }
    }
}

fn server_user() -> Result<Option<ServerUser>, EmbeddedError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = c"postgres";
    // SAFETY: getpwnam with a valid C string; the result is copied out at once, before any
    // other passwd call could overwrite it.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(EmbeddedError::Failed(
            "running as root, the private PostgreSQL must run as the `postgres` system user, \
             which does not exist: install PostgreSQL with `apt-get install postgresql` (it \
             creates the user), or set database.url"
                .into(),
        ));
    }
    // SAFETY: checked non-null above; getpwnam returns a valid passwd record.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some(ServerUser { uid, gid }))
}

/// Lets the server user pass through the private folder `dir` (0700, the daemon's) to its
/// own cluster folder inside it. Only as root, where the server runs as `postgres`: `dir`
/// gets the postgres group and mode 0710 (search, no listing, nothing for anyone else).
/// Otherwise the server runs as the daemon's user and `dir` stays 0700.
pub fn let_server_through(dir: &Path) -> Result<(), EmbeddedError> {
    let Some(user) = server_user()? else {
        return Ok(());
    };
    std::os::unix::fs::chown(dir, None, Some(user.gid)).map_err(|e| {
        failed(
            format!("giving the postgres group access to {}", dir.display()),
            e,
        )
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710))
        .map_err(|e| failed(format!("restricting {}", dir.display()), e))
}

/// Creates `root` owned by the server user with mode 0700, and checks that the server user
/// can reach it through its parents.
fn prepare_root(root: &Path, user: Option<ServerUser>) -> Result<(), EmbeddedError> {
    std::fs::create_dir_all(root).map_err(|e| failed(format!("creating {}", root.display()), e))?;
    let Some(user) = user else {
        return Ok(());
    };
    std::os::unix::fs::chown(root, Some(user.uid), Some(user.gid)).map_err(|e| {
        failed(
            format!("handing {} to the postgres user", root.display()),
            e,
        )
    })?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| failed(format!("restricting {}", root.display()), e))?;
    for ancestor in root.ancestors().skip(1) {
        let meta = std::fs::metadata(ancestor)
            .map_err(|e| failed(format!("reading {}", ancestor.display()), e))?;
        let mode = meta.mode();
        let reachable = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !reachable {
            return Err(EmbeddedError::Failed(format!(
                "the postgres user cannot reach {} because {} has mode {:o}: put \
                 daemon.state_dir elsewhere (not under /root) or run `chmod o+x {}`",
                root.display(),
                ancestor.display(),
                mode & 0o777,
                ancestor.display()
            )));
        }
    }
    Ok(())
}

async fn init_cluster(
    bindir: &Path,
    root: &Path,
    data: &Path,
    user: Option<ServerUser>,
    durability: Durability,
) -> Result<(), EmbeddedError> {
    let mut command = server_command(&bindir.join("initdb"), root, user);
    command
        .arg("-D")
        .arg(data)
        .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C"])
        .arg("--no-instructions");
    if durability == Durability::Throwaway {
        command.arg("--no-sync");
    }
    let out = tokio::process::Command::from(command)
        .output()
        .await
        .map_err(|e| failed(format!("running {}", bindir.join("initdb").display()), e))?;
    if !out.status.success() {
        return Err(EmbeddedError::Failed(format!(
            "initdb failed creating {} ({}):\n{}{}\nfix the cause, remove {} and start again",
            data.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            data.display()
        )));
    }
    Ok(())
}

/// The last couple of kilobytes of the server log, for error messages.
fn log_tail(path: &Path) -> String {
    let mut tail = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(2048)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        tail = String::from_utf8_lossy(&bytes).into_owned();
    }
    tail
}
