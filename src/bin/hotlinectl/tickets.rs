//! `hotlinectl tickets …`: the `hotline.v1.Tickets` methods, one subcommand each. Tickets
//! are named by number (`GD20261201-000001`) or resource name (`tickets/GD…`). The daemon
//! applies the service rules and checks every field; this side only builds the requests.

use clap::{Args, Subcommand};
use hotline::api::pb;
use hotline::ctl::output::{
    Fields, Render, Table, clip, local, name_of, non_empty, parse_enum, parse_time, print, rfc3339,
};
use hotline::ctl::{Api, CtlError};
use prost_types::Timestamp;
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// Tickets newest first, filtered, a page at a time.
    List(ListArgs),
    /// One ticket with its deadlines.
    Get { ticket: String },
    /// A new ticket (status draft).
    Create(CreateArgs),
    /// Changes descriptive fields: those given.
    Update(UpdateArgs),
    /// Sends a draft or returned ticket to a responsible unit.
    Dispatch {
        ticket: String,
        /// Code of the responsible unit.
        #[arg(long)]
        unit: String,
    },
    /// The responsible unit accepts a dispatched ticket (a unit token).
    Accept {
        ticket: String,
        /// The unit has already been in touch with the customer.
        #[arg(long)]
        contacted_customer: bool,
    },
    /// The responsible unit reports what it did and its result (a unit token).
    Reply {
        ticket: String,
        #[arg(long)]
        summary: String,
    },
    /// A unit returns a dispatched ticket, or the centre returns a reply.
    Return {
        ticket: String,
        #[arg(long)]
        reason: String,
    },
    /// Closes a ticket with a reason.
    Close {
        ticket: String,
        #[arg(long)]
        reason: String,
    },
    /// A caller chases a ticket.
    Urge(UrgeArgs),
    /// Records one callback attempt and its outcome.
    Callback(CallbackArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_parser = parse_enum::<pb::Status>)]
    status: Option<pb::Status>,
    #[arg(long, value_parser = parse_enum::<pb::Category>)]
    category: Option<pb::Category>,
    #[arg(long, value_parser = parse_enum::<pb::Channel>)]
    channel: Option<pb::Channel>,
    /// The caller's number, exactly.
    #[arg(long, value_name = "NUMBER")]
    caller: Option<String>,
    /// The household file's id.
    #[arg(long, value_name = "ID")]
    customer_id: Option<i64>,
    /// Created at or after (RFC 3339, e.g. 2026-12-01T00:00:00+08:00).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    created_after: Option<Timestamp>,
    /// Created before (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    created_before: Option<Timestamp>,
    /// Tickets per page (the daemon's default 50, at most 500).
    #[arg(long, value_name = "N")]
    page_size: Option<i32>,
    /// The next-page token a previous list printed; give the same filters.
    #[arg(long, value_name = "TOKEN")]
    page_token: Option<String>,
    /// Every page, not only the first.
    #[arg(long, conflicts_with = "page_token")]
    all: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long, value_parser = parse_enum::<pb::Category>)]
    category: pb::Category,
    #[arg(long, value_parser = parse_enum::<pb::Channel>, default_value = "hotline")]
    channel: pb::Channel,
    /// The caller's number: 3 to 20 digits, optional leading +.
    #[arg(long, value_name = "NUMBER")]
    caller_number: String,
    #[arg(long)]
    caller_name: Option<String>,
    #[arg(long, value_name = "ADDRESS")]
    caller_address: Option<String>,
    #[arg(long)]
    description: String,
    /// 0 (normal) to 9 (most urgent).
    #[arg(long)]
    priority: Option<i32>,
    /// The household file's id.
    #[arg(long, value_name = "ID")]
    customer_id: Option<i64>,
    /// Code of the responsible unit.
    #[arg(long)]
    unit: Option<String>,
    /// The area complaints are grouped by.
    #[arg(long)]
    area: Option<String>,
    /// For an urge: the ticket chased.
    #[arg(long, value_name = "TICKET")]
    parent: Option<String>,
    /// Idempotency key: a retried create with the same key returns the first ticket.
    #[arg(long, value_name = "KEY")]
    request_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    ticket: String,
    #[arg(long)]
    caller_name: Option<String>,
    #[arg(long, value_name = "ADDRESS")]
    caller_address: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long, value_parser = parse_enum::<pb::Category>)]
    category: Option<pb::Category>,
    #[arg(long)]
    priority: Option<i32>,
    #[arg(long)]
    unit: Option<String>,
    #[arg(long, value_name = "ID")]
    customer_id: Option<i64>,
    /// Fail with ABORTED if the ticket changed since this etag was read.
    #[arg(long)]
    etag: Option<String>,
}

#[derive(Debug, Args)]
pub struct UrgeArgs {
    ticket: String,
    #[arg(long, value_parser = parse_enum::<pb::UrgeKind>, default_value = "chase")]
    kind: pb::UrgeKind,
    /// What the caller said.
    #[arg(long)]
    note: String,
}

#[derive(Debug, Args)]
pub struct CallbackArgs {
    ticket: String,
    #[arg(long, value_parser = parse_enum::<pb::CallbackOutcome>)]
    outcome: pb::CallbackOutcome,
    /// Required when reached.
    #[arg(long, value_parser = parse_enum::<pb::Rating>)]
    attitude: Option<pb::Rating>,
    /// Required when reached.
    #[arg(long, value_parser = parse_enum::<pb::Rating>)]
    result: Option<pb::Rating>,
    /// A new demand raised in the callback: it becomes a new ticket.
    #[arg(long)]
    new_demand: Option<String>,
    #[arg(long)]
    note: Option<String>,
    /// Required for call_later: the agreed time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    call_back_time: Option<Timestamp>,
}

/// `GD…` or `tickets/GD…` → `tickets/GD…`.
fn resource(ticket: &str) -> String {
    let ticket = ticket.trim();
    if ticket.starts_with("tickets/") {
        ticket.to_owned()
    } else {
        format!("tickets/{ticket}")
    }
}

pub async fn run(api: &Api, json: bool, command: TicketsCommand) -> Result<(), CtlError> {
    let mut client = api.tickets();
    let ticket = match command {
        TicketsCommand::List(args) => return list(api, json, args).await,
        TicketsCommand::Urge(args) => return urge(api, json, args).await,
        TicketsCommand::Callback(args) => return callback(api, json, args).await,
        TicketsCommand::Create(args) => api.call(client.create_ticket(create(args))).await?,
        TicketsCommand::Update(args) => api.call(client.update_ticket(update(args)?)).await?,
        TicketsCommand::Get { ticket } => {
            let name = resource(&ticket);
            api.call(client.get_ticket(pb::GetTicketRequest { name }))
                .await?
        }
        TicketsCommand::Dispatch { ticket, unit } => {
            let name = resource(&ticket);
            api.call(client.dispatch_ticket(pb::DispatchTicketRequest { name, unit }))
                .await?
        }
        TicketsCommand::Accept {
            ticket,
            contacted_customer,
        } => {
            let request = pb::AcceptTicketRequest {
                name: resource(&ticket),
                contacted_customer,
            };
            api.call(client.accept_ticket(request)).await?
        }
        TicketsCommand::Reply { ticket, summary } => {
            let name = resource(&ticket);
            api.call(client.reply_ticket(pb::ReplyTicketRequest { name, summary }))
                .await?
        }
        TicketsCommand::Return { ticket, reason } => {
            let name = resource(&ticket);
            api.call(client.return_ticket(pb::ReturnTicketRequest { name, reason }))
                .await?
        }
        TicketsCommand::Close { ticket, reason } => {
            let name = resource(&ticket);
            api.call(client.close_ticket(pb::CloseTicketRequest { name, reason }))
                .await?
        }
    };
    print(json, &TicketView::from(&ticket))
}

fn create(args: CreateArgs) -> pb::CreateTicketRequest {
    let ticket = pb::Ticket {
        channel: args.channel.into(),
        category: args.category.into(),
        caller_number: args.caller_number,
        caller_name: args.caller_name.unwrap_or_default(),
        caller_address: args.caller_address.unwrap_or_default(),
        description: args.description,
        priority: args.priority.unwrap_or_default(),
        customer_id: args.customer_id,
        responsible_unit: args.unit.unwrap_or_default(),
        area: args.area.unwrap_or_default(),
        parent_ticket: args.parent.as_deref().map(resource).unwrap_or_default(),
        ..Default::default()
    };
    pb::CreateTicketRequest {
        ticket: Some(ticket),
        request_id: args.request_id.unwrap_or_default(),
    }
}

/// The request setting the fields given, and only those (the update mask).
fn update(args: UpdateArgs) -> Result<pb::UpdateTicketRequest, CtlError> {
    let mut ticket = pb::Ticket {
        name: resource(&args.ticket),
        etag: args.etag.unwrap_or_default(),
        ..Default::default()
    };
    let mut paths = Vec::new();
    let mut set = |path: &str, given: bool| {
        if given {
            paths.push(path.to_owned());
        }
    };
    set("caller_name", args.caller_name.is_some());
    set("caller_address", args.caller_address.is_some());
    set("description", args.description.is_some());
    set("category", args.category.is_some());
    set("priority", args.priority.is_some());
    set("responsible_unit", args.unit.is_some());
    set("customer_id", args.customer_id.is_some());
    if paths.is_empty() {
        return Err(CtlError::Usage(
            "tickets update: nothing to change; give at least one of --caller-name, \
             --caller-address, --description, --category, --priority, --unit, --customer-id"
                .into(),
        ));
    }
    ticket.caller_name = args.caller_name.unwrap_or_default();
    ticket.caller_address = args.caller_address.unwrap_or_default();
    ticket.description = args.description.unwrap_or_default();
    ticket.category = args.category.map_or(0, Into::into);
    ticket.priority = args.priority.unwrap_or_default();
    ticket.responsible_unit = args.unit.unwrap_or_default();
    ticket.customer_id = args.customer_id;
    Ok(pb::UpdateTicketRequest {
        ticket: Some(ticket),
        update_mask: Some(prost_types::FieldMask { paths }),
    })
}

async fn list(api: &Api, json: bool, args: ListArgs) -> Result<(), CtlError> {
    let mut client = api.tickets();
    let mut request = pb::ListTicketsRequest {
        page_size: args.page_size.unwrap_or_default(),
        page_token: args.page_token.unwrap_or_default(),
        caller_number: args.caller.unwrap_or_default(),
        customer_id: args.customer_id,
        status: args.status.map_or(0, Into::into),
        category: args.category.map_or(0, Into::into),
        channel: args.channel.map_or(0, Into::into),
        created_after: args.created_after,
        created_before: args.created_before,
    };
    let mut page = TicketPage::default();
    loop {
        let answer = api.call(client.list_tickets(request.clone())).await?;
        page.tickets
            .extend(answer.tickets.iter().map(TicketView::from));
        page.next_page_token = answer.next_page_token;
        if !args.all || page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token.clone();
    }
    print(json, &page)
}

async fn urge(api: &Api, json: bool, args: UrgeArgs) -> Result<(), CtlError> {
    let request = pb::UrgeTicketRequest {
        name: resource(&args.ticket),
        kind: args.kind.into(),
        note: args.note,
    };
    let answer = api.call(api.tickets().urge_ticket(request)).await?;
    let view = UrgeView {
        ticket: answer.ticket.as_ref().map(TicketView::from),
        explanation: non_empty(answer.explanation),
        urge_ticket: answer.urge_ticket.as_ref().map(TicketView::from),
        supervisor_reason: non_empty(answer.supervisor_reason),
    };
    print(json, &view)
}

async fn callback(api: &Api, json: bool, args: CallbackArgs) -> Result<(), CtlError> {
    let request = pb::RecordCallbackRequest {
        name: resource(&args.ticket),
        outcome: args.outcome.into(),
        attitude: args.attitude.map_or(0, Into::into),
        result: args.result.map_or(0, Into::into),
        new_demand: args.new_demand.unwrap_or_default(),
        note: args.note.unwrap_or_default(),
        call_back_time: args.call_back_time,
    };
    let answer = api.call(api.tickets().record_callback(request)).await?;
    let view = CallbackView {
        ticket: answer.ticket.as_ref().map(TicketView::from),
        new_ticket: answer.new_ticket.as_ref().map(TicketView::from),
    };
    print(json, &view)
}

/// A ticket as printed: the proto's field names, enums by name, times in RFC 3339 (UTC),
/// `null` for what is not set.
#[derive(Debug, Serialize)]
pub struct TicketView {
    name: String,
    number: String,
    status: String,
    channel: String,
    category: String,
    complaint_level: Option<String>,
    priority: i32,
    caller_name: Option<String>,
    caller_number: String,
    caller_address: Option<String>,
    description: String,
    customer_id: Option<i64>,
    responsible_unit: Option<String>,
    area: Option<String>,
    parent_ticket: Option<String>,
    call_id: Option<String>,
    created_by: String,
    create_time: Option<String>,
    update_time: Option<String>,
    etag: String,
    dispatch_due: Option<String>,
    contact_due: Option<String>,
    on_site_due: Option<String>,
    finish_due: Option<String>,
    investigation_due: Option<String>,
    reply_to_caller_due: Option<String>,
    callback_due: Option<String>,
    next_callback_time: Option<String>,
    supervisor_reason: Option<String>,
    satisfaction_attitude: Option<String>,
    satisfaction_result: Option<String>,
}

impl From<&pb::Ticket> for TicketView {
    fn from(t: &pb::Ticket) -> TicketView {
        TicketView {
            name: t.name.clone(),
            number: t.number.clone(),
            status: name_of::<pb::Status>(t.status),
            channel: name_of::<pb::Channel>(t.channel),
            category: name_of::<pb::Category>(t.category),
            complaint_level: non_empty(name_of::<pb::ComplaintLevel>(t.complaint_level)),
            priority: t.priority,
            caller_name: non_empty(t.caller_name.clone()),
            caller_number: t.caller_number.clone(),
            caller_address: non_empty(t.caller_address.clone()),
            description: t.description.clone(),
            customer_id: t.customer_id,
            responsible_unit: non_empty(t.responsible_unit.clone()),
            area: non_empty(t.area.clone()),
            parent_ticket: non_empty(t.parent_ticket.clone()),
            call_id: non_empty(t.call_id.clone()),
            created_by: t.created_by.clone(),
            create_time: rfc3339(t.create_time.as_ref()),
            update_time: rfc3339(t.update_time.as_ref()),
            etag: t.etag.clone(),
            dispatch_due: rfc3339(t.dispatch_due.as_ref()),
            contact_due: rfc3339(t.contact_due.as_ref()),
            on_site_due: rfc3339(t.on_site_due.as_ref()),
            finish_due: rfc3339(t.finish_due.as_ref()),
            investigation_due: rfc3339(t.investigation_due.as_ref()),
            reply_to_caller_due: rfc3339(t.reply_to_caller_due.as_ref()),
            callback_due: rfc3339(t.callback_due.as_ref()),
            next_callback_time: rfc3339(t.next_callback_time.as_ref()),
            supervisor_reason: non_empty(t.supervisor_reason.clone()),
            satisfaction_attitude: non_empty(name_of::<pb::Rating>(t.satisfaction_attitude)),
            satisfaction_result: non_empty(name_of::<pb::Rating>(t.satisfaction_result)),
        }
    }
}

/// An RFC 3339 time of a view in the local time zone, to the minute.
fn shown(at: &Option<String>) -> String {
    let parsed = at.as_deref().and_then(|t| parse_time(t).ok());
    local(parsed.as_ref())
}

impl Render for TicketView {
    fn human(&self) -> String {
        let mut f = Fields::default();
        f.add("ticket", &self.number)
            .add("status", &self.status)
            .add("channel", &self.channel)
            .add("category", &self.category)
            .add(
                "complaint level",
                self.complaint_level.clone().unwrap_or_default(),
            )
            .add("priority", self.priority.to_string())
            .add("caller", caller(self))
            .add("address", self.caller_address.clone().unwrap_or_default())
            .add("description", &self.description)
            .add("unit", self.responsible_unit.clone().unwrap_or_default())
            .add("urges", self.parent_ticket.clone().unwrap_or_default())
            .add(
                "created",
                format!("{} by {}", shown(&self.create_time), self.created_by),
            )
            .add("dispatch due", shown(&self.dispatch_due))
            .add("contact due", shown(&self.contact_due))
            .add("on site due", shown(&self.on_site_due))
            .add("finish due", shown(&self.finish_due))
            .add("investigate by", shown(&self.investigation_due))
            .add("reply to caller", shown(&self.reply_to_caller_due))
            .add("callback due", shown(&self.callback_due))
            .add("next callback", shown(&self.next_callback_time))
            .add(
                "supervisor",
                self.supervisor_reason.clone().unwrap_or_default(),
            )
            .add(
                "attitude",
                self.satisfaction_attitude.clone().unwrap_or_default(),
            )
            .add(
                "result",
                self.satisfaction_result.clone().unwrap_or_default(),
            )
            .add("etag", &self.etag);
        f.render()
    }
}

fn caller(t: &TicketView) -> String {
    match &t.caller_name {
        Some(name) => format!("{name} {}", t.caller_number),
        None => t.caller_number.clone(),
    }
}

#[derive(Debug, Default, Serialize)]
struct TicketPage {
    tickets: Vec<TicketView>,
    /// Empty on the last page.
    next_page_token: String,
}

impl Render for TicketPage {
    fn human(&self) -> String {
        let mut table = Table::new(&[
            "NUMBER",
            "STATUS",
            "CATEGORY",
            "CHANNEL",
            "PRI",
            "UNIT",
            "CALLER",
            "CREATED",
            "DESCRIPTION",
        ]);
        for t in &self.tickets {
            table.row(vec![
                t.number.clone(),
                t.status.clone(),
                t.category.clone(),
                t.channel.clone(),
                t.priority.to_string(),
                t.responsible_unit.clone().unwrap_or_default(),
                t.caller_number.clone(),
                shown(&t.create_time),
                clip(&t.description, 40),
            ]);
        }
        let mut out = table.render("no tickets");
        if !self.next_page_token.is_empty() {
            out.push_str(&format!(
                "more: --page-token {} (or --all)\n",
                self.next_page_token
            ));
        }
        out
    }
}

#[derive(Debug, Serialize)]
struct UrgeView {
    ticket: Option<TicketView>,
    explanation: Option<String>,
    urge_ticket: Option<TicketView>,
    supervisor_reason: Option<String>,
}

impl Render for UrgeView {
    fn human(&self) -> String {
        let mut out = self.ticket.as_ref().map(Render::human).unwrap_or_default();
        let mut f = Fields::default();
        f.add(
            "tell the caller",
            self.explanation.clone().unwrap_or_default(),
        )
        .add(
            "urge ticket",
            self.urge_ticket
                .as_ref()
                .map(|t| t.number.clone())
                .unwrap_or_default(),
        )
        .add(
            "to supervisor",
            self.supervisor_reason.clone().unwrap_or_default(),
        );
        out.push_str(&f.render());
        out
    }
}

#[derive(Debug, Serialize)]
struct CallbackView {
    ticket: Option<TicketView>,
    new_ticket: Option<TicketView>,
}

impl Render for CallbackView {
    fn human(&self) -> String {
        let mut out = self.ticket.as_ref().map(Render::human).unwrap_or_default();
        if let Some(new) = &self.new_ticket {
            out.push_str(&format!("new ticket for the new demand: {}\n", new.number));
        }
        out
    }
}
