//! `hotlinectl announce set|list|clear`: outage announcements (停气/停热通知) played before
//! the first menu, over `hotline.v1.Admin` SetAnnouncement / ListAnnouncements /
//! ClearAnnouncement.

use clap::{ArgGroup, Args, Subcommand};
use hotline::api::pb;
use hotline::ctl::output::{Render, Table, clip, local, parse_time, print, rfc3339};
use hotline::ctl::{Api, CtlError};
use prost_types::Timestamp;
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub enum AnnounceCommand {
    /// Creates an announcement, or with --id replaces one wholesale.
    Set(SetArgs),
    /// The announcements not yet over (running or scheduled).
    List {
        /// Also those that have ended.
        #[arg(long)]
        all: bool,
    },
    /// Deletes an announcement.
    Clear { id: i64 },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["text", "prompt"])))]
pub struct SetArgs {
    /// The announcement to replace; without it a new one is created.
    #[arg(long)]
    id: Option<i64>,
    /// Text to speak (at most 300 characters).
    #[arg(long)]
    text: Option<String>,
    /// Name of a prompt of the prompt folder, instead of a text.
    #[arg(long)]
    prompt: Option<String>,
    /// A called number it plays on (repeat for several); none: every number.
    #[arg(long = "did", value_name = "NUMBER")]
    dids: Vec<String>,
    /// A caller supply area it plays for (repeat for several); none: every caller.
    #[arg(long = "area", value_name = "AREA")]
    areas: Vec<String>,
    /// From when it plays (RFC 3339, e.g. 2026-12-01T08:00:00+08:00).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    from: Timestamp,
    /// Until when it plays (exclusive, RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Timestamp,
}

pub async fn run(api: &Api, json: bool, command: AnnounceCommand) -> Result<(), CtlError> {
    let mut admin = api.admin();
    let announcements = match command {
        AnnounceCommand::Set(args) => {
            let announcement = pb::Announcement {
                id: args.id.unwrap_or_default(),
                text: args.text.unwrap_or_default(),
                prompt: args.prompt.unwrap_or_default(),
                dids: args.dids,
                areas: args.areas,
                starts_at: Some(args.from),
                ends_at: Some(args.until),
                ..Default::default()
            };
            let request = pb::SetAnnouncementRequest {
                announcement: Some(announcement),
            };
            vec![api.call(admin.set_announcement(request)).await?]
        }
        AnnounceCommand::List { all } => {
            let request = pb::ListAnnouncementsRequest { include_ended: all };
            api.call(admin.list_announcements(request))
                .await?
                .announcements
        }
        AnnounceCommand::Clear { id } => {
            let request = pb::ClearAnnouncementRequest { id };
            vec![api.call(admin.clear_announcement(request)).await?]
        }
    };
    let view = Announcements {
        announcements: announcements.iter().map(AnnouncementView::from).collect(),
    };
    print(json, &view)
}

#[derive(Debug, Serialize)]
struct AnnouncementView {
    id: i64,
    text: String,
    prompt: String,
    dids: Vec<String>,
    areas: Vec<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    rendered: bool,
    created_by: String,
    created_at: Option<String>,
    /// For the table only.
    #[serde(skip)]
    span: String,
}

impl From<&pb::Announcement> for AnnouncementView {
    fn from(a: &pb::Announcement) -> AnnouncementView {
        AnnouncementView {
            id: a.id,
            text: a.text.clone(),
            prompt: a.prompt.clone(),
            dids: a.dids.clone(),
            areas: a.areas.clone(),
            starts_at: rfc3339(a.starts_at.as_ref()),
            ends_at: rfc3339(a.ends_at.as_ref()),
            rendered: a.rendered,
            created_by: a.created_by.clone(),
            created_at: rfc3339(a.created_at.as_ref()),
            span: format!(
                "{} – {}",
                local(a.starts_at.as_ref()),
                local(a.ends_at.as_ref())
            ),
        }
    }
}

#[derive(Debug, Serialize)]
struct Announcements {
    announcements: Vec<AnnouncementView>,
}

impl Render for Announcements {
    fn human(&self) -> String {
        let mut table = Table::new(&["ID", "PLAYS", "NUMBERS", "AREAS", "SAYS"]);
        let every = |list: &[String]| match list.is_empty() {
            true => "all".to_owned(),
            false => list.join(","),
        };
        for a in &self.announcements {
            let says = match a.prompt.is_empty() {
                true => clip(&a.text, 40),
                false => format!("prompt {}", a.prompt),
            };
            table.row(vec![
                a.id.to_string(),
                a.span.clone(),
                every(&a.dids),
                every(&a.areas),
                says,
            ]);
        }
        table.render("no announcements")
    }
}
