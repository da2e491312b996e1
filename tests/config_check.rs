//! The configuration check that `hotlined --check-config FILE` runs: every problem of a
//! broken file reported on its line and key, all at once; the shipped example loads.

use hotline::config::{self, ConfigErrors, Role};
use std::collections::HashMap;
use std::process::ExitCode;

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn problems(text: &str, vars: &[(&str, &str)]) -> ConfigErrors {
    let env = env_of(vars);
    match config::load_str_with_env(text, "broken.toml", &env) {
        Ok(config) => panic!("expected problems, loaded {config:?}"),
        Err(errors) => errors,
    }
}

/// The line and column of the problem on `key`, and its message.
fn at(errors: &ConfigErrors, key: &str) -> (usize, usize, String) {
    let error = errors
        .find(key)
        .unwrap_or_else(|| panic!("no problem on {key}; got:\n{errors}"));
    let position = error.position.expect("position");
    (position.line, position.column, error.message.clone())
}

const BROKEN: &str = r#"# a broken configuration: every problem below must be reported
[daemon]
state_dir = "var"
time_zone = "Asia/Shangai"

[log]
format = "json"
filter = 7

[grpc]
listen = "localhost:fifty"

[[grpc.tokens]]
name = "admin"
role = "admin"
token_env = "HOTLINE_ADMIN_TOKEN"

[[grpc.tokens]]
name = "agent:1001"
role = "agent"
token = "0123456789abcdef0123"

[[grpc.tokens]]
name = "wechat"
rol = "integration"
token = "fedcba9876543210fedc"

[[grpc.tokens]]
name = "agent:1001"
role = "integration"
channel = "fax"
token = "aaaaaaaaaaaaaaaaaaaa"
"#;

#[test]
fn every_problem_of_a_broken_file_is_reported_on_its_line_and_key() {
    let errors = problems(BROKEN, &[]);
    let text = errors.to_string();

    let (line, column, message) = at(&errors, "daemon.time_zone");
    assert_eq!((line, column), (4, 1));
    assert!(message.contains("Asia/Shangai") && message.contains("Asia/Shanghai"));

    let (line, _, message) = at(&errors, "log.filter");
    assert_eq!(line, 8);
    assert!(message.starts_with("wrong type"), "{message}");
    assert!(message.contains("integer"), "{message}");

    let (line, _, message) = at(&errors, "grpc.listen");
    assert_eq!(line, 11);
    assert!(message.contains("127.0.0.1:50051"), "{message}");

    let (line, _, message) = at(&errors, "grpc.tokens[0].token_env");
    assert_eq!(line, 16);
    assert!(
        message.contains("HOTLINE_ADMIN_TOKEN is not set"),
        "{message}"
    );

    // The agent token has no agent_id: reported on its table (the line of `[[grpc.tokens]]`
    // or its first key).
    let (line, _, message) = at(&errors, "grpc.tokens[1].agent_id");
    assert!((18..=19).contains(&line), "line {line}");
    assert!(message.contains("agent_id = "), "{message}");

    let (line, column, message) = at(&errors, "grpc.tokens[2].rol");
    assert_eq!((line, column), (25, 1));
    assert!(
        message.starts_with("unknown key; did you mean role? expected one of name, role, token"),
        "{message}"
    );
    // The misspelt key is the problem; its consequence (role missing) is not reported twice.
    assert!(errors.find("grpc.tokens[2].role").is_none(), "{text}");

    // The element after the dropped one keeps its index from the file.
    let (line, _, message) = at(&errors, "grpc.tokens[3].name");
    assert_eq!(line, 29);
    assert!(
        message.contains("duplicate token name \"agent:1001\" (also grpc.tokens[1] (line 18))"),
        "{message}"
    );
    let (line, _, message) = at(&errors, "grpc.tokens[3].channel");
    assert_eq!(line, 31);
    assert!(message.contains("unknown channel \"fax\""), "{message}");
    assert!(message.contains("wechat") && message.contains("gov_12345"));

    assert_eq!(errors.len(), 8, "{text}");
    // One line per problem, in file order, as FILE:LINE:COL: KEY: message.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    assert!(
        lines[0].starts_with("broken.toml:4:1: daemon.time_zone: "),
        "{text}"
    );
    let mut previous = 0;
    for line in &lines {
        let number: usize = line.split(':').nth(1).unwrap().parse().unwrap();
        assert!(number >= previous, "not in file order:\n{text}");
        previous = number;
    }
}

#[test]
fn wrong_enum_values_and_missing_keys_are_named() {
    let errors = problems(
        "[log]\nformat = \"xml\"\n\n[[grpc.tokens]]\nname = \"x\"\ntoken = \"0123456789abcdef\"\n",
        &[],
    );
    let (line, _, message) = at(&errors, "log.format");
    assert_eq!(line, 2);
    assert_eq!(
        message,
        "unknown value \"xml\"; expected one of human, json"
    );
    let (line, _, message) = at(&errors, "grpc.tokens[0].role");
    assert!((4..=5).contains(&line), "line {line}");
    assert!(message.starts_with("missing"), "{message}");
    assert_eq!(errors.len(), 2, "{errors}");
}

#[test]
fn unknown_sections_and_syntax_errors_are_reported() {
    let errors = problems("[daemon]\n[menus]\nmenu = 1\n", &[]);
    let (line, column, message) = at(&errors, "menus");
    assert_eq!((line, column), (2, 2));
    assert!(message.contains("daemon, log, database, grpc"), "{message}");

    let errors = problems(
        "[daemon]\nstate_dir = \"var\nx = 1\nstate_dir = \"a\"\n",
        &[],
    );
    let text = errors.to_string();
    assert!(text.starts_with("broken.toml:2:"), "{text}");
    assert!(text.contains("TOML syntax error"), "{text}");
}

#[test]
fn odd_shapes_are_reported_not_panicked_on() {
    let errors = problems("grpc = 5\n[[daemon]]\nstate_dir = 1\n", &[]);
    assert_eq!(
        at(&errors, "grpc").2,
        "wrong type: found integer 5, expected a table; write a value of that type"
    );
    let (line, _, message) = at(&errors, "daemon[0]");
    assert_eq!(line, 2);
    assert!(message.contains("found a table"), "{message}");

    let errors = problems(
        "[grpc]\ntokens = [1, { name = \"x\", role = \"boss\", token = \"0123456789abcdef\" }]\n",
        &[],
    );
    assert!(
        at(&errors, "grpc.tokens[0]").2.contains("expected a table"),
        "{errors}"
    );
    let (line, _, message) = at(&errors, "grpc.tokens[1].role");
    assert_eq!(line, 2);
    assert!(message.contains("admin, agent, integration"), "{message}");
    assert_eq!(errors.len(), 2, "{errors}");
}

#[test]
fn secrets_come_from_the_environment() {
    let text = r#"
[database]
url = "mysql://nope"

[[grpc.tokens]]
name = "wechat"
role = "integration"
channel = "wechat"
token_env = "WECHAT_TOKEN"
"#;
    let env = env_of(&[
        ("WECHAT_TOKEN", "s3cret-s3cret-s3cret"),
        (
            "HOTLINE_DATABASE_URL",
            "postgres://hotline@127.0.0.1:5432/hotline",
        ),
    ]);
    let config = config::load_str_with_env(text, "env.toml", &env).unwrap();
    assert_eq!(
        config.database.url.as_deref(),
        Some("postgres://hotline@127.0.0.1:5432/hotline")
    );
    let token = &config.grpc.tokens[0];
    assert_eq!(token.role, Role::Integration);
    assert_eq!(token.token.as_deref(), Some("s3cret-s3cret-s3cret"));
    // Debug output never shows the secret.
    assert!(!format!("{config:?}").contains("s3cret"));

    // Without the override the file's URL is checked, and a bad one is named without its text.
    let env = env_of(&[("WECHAT_TOKEN", "s3cret-s3cret-s3cret")]);
    let errors = config::load_str_with_env(text, "env.toml", &env).unwrap_err();
    let (line, _, message) = at(&errors, "database.url");
    assert_eq!(line, 3);
    assert!(message.contains("not a PostgreSQL URL"), "{message}");
    assert!(!message.contains("mysql"), "{message}");
}

#[test]
fn token_secrets_must_be_present_distinct_and_long() {
    let text = r#"
[[grpc.tokens]]
name = "a"
role = "admin"

[[grpc.tokens]]
name = "b"
role = "admin"
token = "short"

[[grpc.tokens]]
name = "c"
role = "admin"
token = "fedcba9876543210"
token_env = "C_TOKEN"

[[grpc.tokens]]
name = "d"
role = "agent"
agent_id = "1002"
token = "0123456789abcdef"

[[grpc.tokens]]
name = "e"
role = "admin"
agent_id = "1003"
channel = "wechat"
token = "0123456789abcdef"
"#;
    let errors = problems(text, &[("C_TOKEN", "ignored-ignored-ignored")]);
    assert!(at(&errors, "grpc.tokens[0]").2.starts_with("no secret"));
    assert!(at(&errors, "grpc.tokens[1].token").2.contains("too short"));
    assert!(
        at(&errors, "grpc.tokens[2].token_env")
            .2
            .contains("both token and token_env")
    );
    assert!(
        at(&errors, "grpc.tokens[4].token")
            .2
            .contains("same secret as grpc.tokens[3]")
    );
    assert!(
        at(&errors, "grpc.tokens[4].agent_id")
            .2
            .contains("only agent tokens")
    );
    assert!(
        at(&errors, "grpc.tokens[4].channel")
            .2
            .contains("only integration tokens")
    );
    assert_eq!(errors.len(), 6, "{errors}");
    assert!(!errors.to_string().contains("0123456789abcdef"));
}

#[test]
fn tls_files_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let key = dir.path().join("missing-key.pem");
    let text = format!(
        "[grpc.tls]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let errors = problems(&text, &[]);
    let (line, _, message) = at(&errors, "grpc.tls.key");
    assert_eq!(line, 3);
    assert!(message.contains("missing-key.pem"), "{message}");
    assert_eq!(errors.len(), 1, "{errors}");
}

#[test]
fn check_file_names_the_file_and_reports_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hotline.toml");
    std::fs::write(&path, "[grpc]\nlisten = \"127.0.0.1:0\"\nlistne = 1\n").unwrap();
    let errors = config::check_file(&path).unwrap_err();
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:3:1: grpc.listne: unknown key; did you mean listen? expected one of listen, tls, \
             allow_plaintext, tokens",
            path.display()
        )
    );

    let missing = dir.path().join("nope.toml");
    let errors = config::check_file(&missing).unwrap_err();
    let text = errors.to_string();
    assert!(
        text.starts_with(&format!("{}: cannot read", missing.display())),
        "{text}"
    );
}

#[test]
fn run_check_exit_status_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[daemon]\ntime_zone = \"Asia/Urumqi\"\n").unwrap();
    assert_eq!(config::run_check(&good), ExitCode::SUCCESS);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[daemon]\ntime_zone = \"Mars/Olympus\"\n").unwrap();
    assert_eq!(config::run_check(&bad), ExitCode::from(2));

    // A state_dir that is a file is caught before the daemon tries to use it.
    let text = format!("[daemon]\nstate_dir = {:?}\n", good.display().to_string());
    let (line, _, message) = at(&problems(&text, &[]), "daemon.state_dir");
    assert_eq!(line, 2);
    assert!(message.contains("not a directory"), "{message}");

    // No file: the documented defaults.
    let defaults = config::load_or_default(None).unwrap();
    assert_eq!(defaults.daemon.time_zone, "Asia/Shanghai");
    assert_eq!(defaults.grpc.listen.to_string(), "127.0.0.1:50051");
    assert_eq!(defaults.log.filter, "info");
}

#[test]
fn the_shipped_example_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/hotline.toml");
    let env = env_of(&[
        ("HOTLINE_ADMIN_TOKEN", "admin-admin-admin-admin"),
        ("HOTLINE_AGENT_1001_TOKEN", "agent-1001-agent-1001"),
        ("HOTLINE_WECHAT_TOKEN", "wechat-wechat-wechat"),
    ]);
    let config = config::load_with_env(path, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.daemon.time_zone, "Asia/Shanghai");
    assert_eq!(config.grpc.listen.to_string(), "127.0.0.1:50051");
    assert_eq!(config.grpc.tokens.len(), 3);
    assert!(config.grpc.tokens.iter().all(|t| t.token.is_some()));
    // The example calendar is the rules' calendar: National Day is off, its make-up
    // Saturday is a working day.
    let rules = config.rules().unwrap();
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    assert!(!rules.calendar.is_working_day(day(10, 5)));
    assert!(rules.calendar.is_working_day(day(10, 10)));
    // ... and the IVR's: National Day takes the holiday flow.
    assert!(config.ivr.is_holiday(day(10, 5)));
    assert!(!config.ivr.is_holiday(day(10, 10)));
    assert_eq!(config.daemon.overdue_check_seconds, 60);

    // Without the secrets in the environment, each missing variable is named on its line.
    let errors = config::load_with_env(path, &env_of(&[])).unwrap_err();
    assert_eq!(errors.len(), 3, "{errors}");
    assert!(
        errors.iter().all(|e| e.key.ends_with(".token_env")),
        "{errors}"
    );
}

#[test]
fn the_log_section_starts_logging_once() {
    let env = env_of(&[]);
    let config = config::load_str_with_env(
        "[log]\nformat = \"json\"\nfilter = \"warn\"\n",
        "log.toml",
        &env,
    )
    .unwrap();
    hotline::logging::init(config.log.format, &config.log.filter).unwrap();
    let again = hotline::logging::init(config.log.format, &config.log.filter).unwrap_err();
    assert!(again.to_string().contains("already installed"), "{again}");
}

#[test]
fn ticket_rules_are_checked_on_their_lines_and_take_the_daemon_time_zone() {
    let text = r#"[daemon]
time_zone = "Asia/Urumqi"

[[grpc.tokens]]
name = "north desk"
role = "unit"
token = "0123456789abcdef0123"

[tickets.calendar]
time_zone = "Asia/Shanghai"

[tickets.callback]
min_attempts = 0
"#;
    let errors = problems(text, &[]);
    let (line, _, message) = at(&errors, "tickets.calendar.time_zone");
    assert_eq!(line, 10);
    assert!(message.contains("daemon.time_zone"), "{message}");
    let (line, _, message) = at(&errors, "tickets.callback.min_attempts");
    assert_eq!(line, 13);
    assert!(message.contains("at least 1"), "{message}");
    let (_, _, message) = at(&errors, "grpc.tokens[0].unit");
    assert!(message.contains("must name its unit"), "{message}");

    let fine = "[daemon]\ntime_zone = \"Asia/Urumqi\"\n[tickets]\nmax_urges = 3\n";
    let config = config::load_str_with_env(fine, "fine.toml", &env_of(&[])).unwrap();
    assert_eq!(config.tickets.max_urges, 3);
    assert_eq!(config.tickets.calendar.time_zone, "Asia/Urumqi");
    let rules = config.rules().unwrap();
    assert_eq!(rules.calendar.time_zone().name(), "Asia/Urumqi");

    let bad_tiers = "[tickets.callback.sampling]\ntiers = [{ up_to = 20, percent = 30 }]\n";
    let errors = problems(bad_tiers, &[]);
    let (line, _, _) = at(&errors, "tickets.callback.sampling.tiers");
    assert_eq!(line, 2);
}

#[test]
fn call_section_problems_name_their_line_and_key() {
    let text = "[sip]\nallowed_sources = [\"10.0.0.0/40\"]\n\n[media]\nrtp_port_min = 20001\n\
                sounds_dir = \"sounds/zh-CN\"\n\n[acd]\nqueues = {}\n\n[acd.agents.7]\n\
                uri = \"tel:7\"\nqueues = [\"general\"]\n";
    let errors = problems(text, &[]);
    assert_eq!(at(&errors, "sip.allowed_sources").0, 2);
    let (line, _, message) = at(&errors, "media.rtp_port_min");
    assert_eq!(line, 5);
    assert!(message.contains("odd"), "{message}");
    assert_eq!(at(&errors, "acd.agents.7.uri").0, 12);
    // The built-in [ivr] names queues this [acd] lacks.
    assert!(errors.find("ivr.leak.queue").is_some(), "{errors}");
}

#[test]
fn a_session_interval_below_the_rfc_minimum_names_its_line_and_key() {
    let text = "[sip]\nlisten = \"127.0.0.1:5060\"\nsession_expires_secs = 60\n";
    let errors = problems(text, &[]);
    let (line, _, message) = at(&errors, "sip.session_expires_secs");
    assert_eq!(line, 3);
    assert!(
        message.contains("below the RFC 4028 minimum of 90 s"),
        "{message}"
    );
    assert!(
        message.contains("or 0 to ask for no session timer"),
        "{message}"
    );
    assert!(errors.to_string().starts_with("broken.toml:3:"), "{errors}");
}

/// The line (1-based) of the first line of `text` that starts with `start`.
fn line_starting(text: &str, start: &str) -> usize {
    text.lines().position(|l| l.starts_with(start)).unwrap() + 1
}

#[test]
fn keys_live_at_once_must_differ_and_the_message_names_both_lines() {
    let flow = config::BUILTIN_CALL_FLOW.replace(
        "policy = \"announce\"",
        "policy = \"opt_in\"\nopt_in_digit = \"1\"",
    );
    let errors = problems(&flow, &[]);
    let (line, _, message) = at(&errors, "ivr.recording.opt_in_digit");
    assert_eq!(line, line_starting(&flow, "opt_in_digit"));
    let leak_line = line_starting(&flow, "digit = \"1\"");
    assert!(
        message.contains(&format!(
            "also the leak key at ivr.leak.digit (line {leak_line})"
        )),
        "{message}"
    );
    assert_eq!(errors.len(), 1, "{errors}");

    // A menu option on the leak key, the leak key left at its default.
    let flow = config::BUILTIN_CALL_FLOW
        .replace("digit = \"1\"\n", "")
        .replace("{ digit = \"4\",", "{ digit = \"1\",");
    let errors = problems(&flow, &[]);
    let error = errors.iter().next().unwrap();
    assert_eq!(error.key, "ivr.flows.main.nodes.menu.options.2", "{errors}");
    assert!(
        error
            .message
            .contains("also the leak key at ivr.leak.digit (default)"),
        "{errors}"
    );
}

#[test]
fn a_recorded_menu_prompt_is_a_warning_not_an_error() {
    let mut flow = config::BUILTIN_CALL_FLOW.replace(
        "kind = \"menu\"\n",
        "kind = \"menu\"\nprompts = [\"welcome\"]\n",
    );
    for label in ["repair", "billing", "consultation", "complaint", "person"] {
        flow = flow.replace(&format!(", label = \"label_{label}\""), "");
    }
    let config = config::load_str_with_env(&flow, "recorded.toml", &env_of(&[])).unwrap();
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    let warning = &config.warnings[0];
    assert_eq!(warning.key, "ivr.flows.main.nodes.menu.prompts");
    assert_eq!(
        warning.position.unwrap().line,
        line_starting(&flow, "prompts = [\"welcome\"]")
    );
    assert!(warning.message.starts_with("warning: "), "{warning}");
    assert!(warning.message.contains("cannot be checked"), "{warning}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recorded.toml");
    std::fs::write(&path, &flow).unwrap();
    assert_eq!(config::run_check(&path), ExitCode::SUCCESS);
    // The shipped flow speaks every key itself: nothing to warn about.
    let shipped = config::load_str_with_env("", "(defaults)", &env_of(&[])).unwrap();
    assert_eq!(shipped.warnings, Vec::new());
}

#[test]
fn plaintext_api_off_loopback_needs_tls_or_allow_plaintext() {
    let text = "[grpc]\nlisten = \"0.0.0.0:50051\"\n";
    let (line, _, message) = at(&problems(text, &[]), "grpc.listen");
    assert_eq!(line, 2);
    assert!(
        message.contains("[grpc.tls]") && message.contains("allow_plaintext = true"),
        "{message}"
    );
    let allowed = format!("{text}allow_plaintext = true\n");
    let config = config::load_str_with_env(&allowed, "ok.toml", &env_of(&[])).unwrap();
    let warning = config.grpc.plaintext_exposure().unwrap().unwrap();
    assert!(warning.contains("without TLS"), "{warning}");
    let loopback = config::load_str_with_env(
        "[grpc]\nlisten = \"[::1]:50051\"\n",
        "ok.toml",
        &env_of(&[]),
    )
    .unwrap();
    assert_eq!(loopback.grpc.plaintext_exposure(), Ok(None));

    // The daemon refuses too when --listen moves a loopback configuration off loopback,
    // before it starts anything.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sounds"),
        dir.path().join("sounds"),
    )
    .unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_hotlined"))
        .args(["--listen", "0.0.0.0:50051"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("grpc.listen: 0.0.0.0:50051 is reachable"),
        "{stderr}"
    );
    assert!(!dir.path().join("var").exists(), "nothing started");

    // Allowed: it starts (here it stops at once, at the unreachable database), warning first.
    let path = dir.path().join("plain.toml");
    std::fs::write(
        &path,
        format!(
            "{allowed}[daemon]\nstate_dir = {:?}\n[database]\nurl = \"postgres://hotline@127.0.0.1:1/hotline\"\n",
            dir.path().join("var").display().to_string()
        ),
    )
    .unwrap();
    let started = std::process::Command::new(env!("CARGO_BIN_EXE_hotlined"))
        .arg("--config")
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&started.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("without TLS (grpc.allow_plaintext = true)"),
        "{stderr}"
    );
}

#[test]
fn survey_and_position_settings_are_checked_on_their_lines() {
    let flow = config::BUILTIN_CALL_FLOW
        .replace(
            "[ivr.numbers.default]",
            "[ivr.survey]\ntimeout_secs = 0\nsatisfied = { digit = \"1\", label = \"label_satisfied\" }\n\
             unsatisfied = { digit = \"1\", label = \"label_unsatisfied\" }\n\n[ivr.numbers.default]",
        )
        .replace("ring_timeout_secs = 15", "ring_timeout_secs = 15\nannounce_every_secs = 5");
    let errors = problems(&flow, &[]);
    assert_eq!(
        at(&errors, "ivr.survey.timeout_secs").0,
        line_starting(&flow, "timeout_secs = 0")
    );
    let (line, _, message) = at(&errors, "ivr.survey.unsatisfied.digit");
    assert_eq!(line, line_starting(&flow, "unsatisfied = "));
    let satisfied_line = line_starting(&flow, "satisfied = ");
    assert!(
        message.contains(&format!(
            "also a survey answer at ivr.survey.satisfied.digit (line {satisfied_line})"
        )),
        "{message}"
    );
    let (line, _, message) = at(&errors, "acd.announce_every_secs");
    assert_eq!(line, line_starting(&flow, "announce_every_secs"));
    assert!(message.contains("at least 10"), "{message}");
    assert_eq!(errors.len(), 3, "{errors}");
}

#[test]
fn overlapping_shifts_of_the_heating_line_pass_the_check() {
    // 004: early 07–15, late 14:30–22:30, night 22–07 hand over for half an hour.
    let text = format!(
        "{}\n{}",
        config::BUILTIN_CALL_FLOW,
        r#"
[[ivr.shifts]]
name = "early"
start = "07:00"
end = "15:00"

[[ivr.shifts]]
name = "late"
start = "14:30"
end = "22:30"

[[ivr.shifts]]
name = "night"
start = "22:00"
end = "07:00"
"#
    );
    let loaded = config::load_str_with_env(&text, "shifts.toml", &env_of(&[]));
    let config = loaded.unwrap_or_else(|e| panic!("{e}"));
    let at = |h, m| {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    };
    let shift = |h, m| config.ivr.shift_at(at(h, m)).map(|s| s.name.clone());
    assert_eq!(shift(14, 45).as_deref(), Some("late"));
    assert_eq!(shift(22, 15).as_deref(), Some("night"));
    assert_eq!(shift(7, 0).as_deref(), Some("early"));
}

#[test]
fn one_calendar_serves_opening_hours_and_ticket_deadlines() {
    let text = "[calendar]\nholidays = [\"2026-10-01\", 2026-10-02]\nmake_up_working_days = [\"2026-10-10\"]\n";
    let config = config::load_str_with_env(text, "calendar.toml", &env_of(&[])).unwrap();
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let rules = config.rules().unwrap();
    for date in [day(10, 1), day(10, 2)] {
        assert!(config.ivr.is_holiday(date), "{date}");
        assert!(!rules.calendar.is_working_day(date), "{date}");
    }
    // A make-up Saturday: a working day for both.
    assert!(!config.ivr.is_holiday(day(10, 10)));
    assert!(rules.calendar.is_working_day(day(10, 10)));

    let both = "[calendar]\nholidays = [\"2026-10-01\"]\nmake_up_working_days = [\"2026-10-01\"]\n";
    let (line, _, message) = at(&problems(both, &[]), "calendar.make_up_working_days");
    assert_eq!(line, 3);
    assert!(message.contains("2026-10-01 is listed both"), "{message}");
}

#[test]
fn the_old_calendar_keys_name_the_new_one_and_check_config_exits_2() {
    let text = r#"[tickets.calendar]
holidays = ["2026-10-01"]
make_up_working_days = ["2026-10-10"]

[ivr.calendar]
holidays = ["2026-10-01"]
make_up_workdays = ["2026-10-10"]
"#;
    let errors = problems(text, &[]);
    for (key, line, new_key) in [
        ("tickets.calendar.holidays", 2, "[calendar] holidays"),
        (
            "tickets.calendar.make_up_working_days",
            3,
            "[calendar] make_up_working_days",
        ),
        ("ivr.calendar.holidays", 6, "[calendar] holidays"),
        (
            "ivr.calendar.make_up_workdays",
            7,
            "[calendar] make_up_working_days",
        ),
    ] {
        let (at_line, _, message) = at(&errors, key);
        assert_eq!(at_line, line, "{key}");
        assert!(message.contains(new_key), "{key}: {message}");
    }

    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.toml");
    std::fs::write(
        &old,
        "[ivr.calendar]\nmake_up_workdays = [\"2026-10-10\"]\n",
    )
    .unwrap();
    assert_eq!(config::run_check(&old), ExitCode::from(2));
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_hotlined"))
        .arg("--check-config")
        .arg(&old)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("ivr.calendar.make_up_workdays")
            && stderr.contains("[calendar] make_up_working_days"),
        "{stderr}"
    );
}
