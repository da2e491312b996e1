//! `CreateTickets`: one call's demands split into one ticket per responsible unit, of the
//! highest category among each unit's demands (000 §15.1.3, `tickets::split`).

use super::pb;
use super::requests::{text, unit_code};
use super::tickets::{TicketsService, caller, category_from, category_to, invalid, to_proto};
use crate::tickets::split::{Demand, SplitError, split_call};
use tonic::{Request, Response, Status};

const MAX_DEMANDS: usize = 20;

fn demands(items: &[pb::Demand]) -> Result<Vec<Demand>, Status> {
    if items.is_empty() {
        return Err(invalid("demands", "required: at least one demand"));
    }
    if items.len() > MAX_DEMANDS {
        return Err(invalid(
            "demands",
            format!("at most {MAX_DEMANDS} per call"),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let field = |what: &str| format!("demands[{i}].{what}");
            let unit = unit_code(&d.responsible_unit, &field("responsible_unit"))?
                .ok_or_else(|| invalid(&field("responsible_unit"), "required"))?;
            let category = category_from(d.category, &field("category"))?
                .ok_or_else(|| invalid(&field("category"), "required"))?;
            text(&d.description, &field("description"), 4000, true)?;
            Ok(Demand {
                unit,
                category,
                description: d.description.trim().to_owned(),
            })
        })
        .collect()
}

fn split_status(err: SplitError) -> Status {
    match err {
        SplitError::NoDemands => invalid("demands", err),
        SplitError::NoUnit { index } => invalid(&format!("demands[{index}].responsible_unit"), err),
        SplitError::UrgeIsNotANewDemand { index } => {
            invalid(&format!("demands[{index}].category"), err)
        }
    }
}

impl TicketsService {
    pub(super) async fn create_for_demands(
        &self,
        request: Request<pb::CreateTicketsRequest>,
    ) -> Result<Response<pb::CreateTicketsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let template = r.caller.ok_or_else(|| invalid("caller", "required"))?;
        let planned = split_call(demands(&r.demands)?).map_err(split_status)?;
        let now = self.now();
        // Whether each is a repeat is read before any is filed: the call's own tickets are
        // not repeats of each other.
        let mut repeats = Vec::with_capacity(planned.len());
        for ticket in &planned {
            repeats.push(
                self.is_repeat(&template.caller_number, ticket.category, now)
                    .await?,
            );
        }
        let mut created = Vec::with_capacity(planned.len());
        for (ticket, repeat) in planned.into_iter().zip(repeats) {
            let description = ticket
                .demands
                .iter()
                .map(|d| format!("【{}】{}", d.category.label(), d.description))
                .collect::<Vec<_>>()
                .join("\n");
            let request_id = match r.request_id.as_str() {
                "" => String::new(),
                key => format!("{key}:{}", ticket.unit),
            };
            let one = pb::CreateTicketRequest {
                ticket: Some(pb::Ticket {
                    category: category_to(ticket.category),
                    responsible_unit: ticket.unit,
                    description,
                    complaint_level: 0,
                    ..template.clone()
                }),
                request_id,
            };
            let filed = self
                .create_one(&caller, one, now, Some(repeat))
                .await
                .map_err(|status| {
                    // Name the request's fields, not the inner ticket's.
                    Status::new(
                        status.code(),
                        status.message().replacen("ticket.", "caller.", 1),
                    )
                })?;
            created.push(to_proto(filed));
        }
        Ok(Response::new(pb::CreateTicketsResponse {
            tickets: created,
        }))
    }
}
