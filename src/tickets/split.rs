//! Splitting a call's demands into tickets (hotline-rules §4, 000 §15.1.3): demands for
//! different responsible units become one ticket per unit (linked by the call); demands of
//! different types for one unit share a ticket of the highest category (`Category`'s order).
//!
//! Pure; the store creates and links the tickets.

use crate::tickets::model::Category;

/// One demand the agent noted during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub unit: String,
    pub category: Category,
    pub description: String,
}

/// A ticket to create: its unit, its category and the demands it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTicket {
    pub unit: String,
    pub category: Category,
    pub demands: Vec<Demand>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the call has no demands to file")]
    NoDemands,
    #[error("demand {index} has no responsible unit; choose one before filing")]
    NoUnit { index: usize },
    #[error(
        "demand {index} is an urge: chasing or adding to an existing ticket goes through UrgeTicket, not a new ticket"
    )]
    UrgeIsNotANewDemand { index: usize },
}

/// Groups demands by unit in the order units first appear.
pub fn split_call(demands: Vec<Demand>) -> Result<Vec<PlannedTicket>, SplitError> {
    if demands.is_empty() {
        return Err(SplitError::NoDemands);
    }
    let mut tickets: Vec<PlannedTicket> = Vec::new();
    for (index, mut demand) in demands.into_iter().enumerate() {
        demand.unit = demand.unit.trim().to_owned();
        if demand.unit.is_empty() {
            return Err(SplitError::NoUnit { index });
        }
        if demand.category == Category::Urge {
            return Err(SplitError::UrgeIsNotANewDemand { index });
        }
        match tickets.iter_mut().find(|t| t.unit == demand.unit) {
            Some(ticket) => {
                ticket.category = ticket.category.max(demand.category);
                ticket.demands.push(demand);
            }
            None => tickets.push(PlannedTicket {
                unit: demand.unit.clone(),
                category: demand.category,
                demands: vec![demand],
            }),
        }
    }
    Ok(tickets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(unit: &str, category: Category) -> Demand {
        Demand {
            unit: unit.into(),
            category,
            description: format!("{category} for {unit}"),
        }
    }

    #[test]
    fn one_ticket_per_unit_with_the_highest_category() {
        let tickets = split_call(vec![
            demand("north", Category::Consultation),
            demand("billing", Category::Query),
            demand("north ", Category::Complaint),
            demand("north", Category::Repair),
        ])
        .unwrap();
        let summary: Vec<(&str, Category, usize)> = tickets
            .iter()
            .map(|t| (t.unit.as_str(), t.category, t.demands.len()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("north", Category::Complaint, 3),
                ("billing", Category::Query, 1)
            ]
        );
    }

    #[test]
    fn precedence_follows_000() {
        use Category::*;
        let pairs = [
            (Leak, Complaint),
            (Complaint, Repair),
            (Repair, Urge),
            (Urge, TipOff),
            (TipOff, ServiceApplication),
            (ServiceApplication, Opinion),
            (Consultation, Praise),
            (Praise, Query),
        ];
        for (higher, lower) in pairs {
            assert!(higher > lower, "{higher} > {lower}");
        }
    }

    #[test]
    fn bad_calls_are_refused() {
        assert_eq!(split_call(vec![]), Err(SplitError::NoDemands));
        assert_eq!(
            split_call(vec![
                demand("north", Category::Repair),
                demand(" ", Category::Query)
            ]),
            Err(SplitError::NoUnit { index: 1 })
        );
        assert_eq!(
            split_call(vec![demand("north", Category::Urge)]),
            Err(SplitError::UrgeIsNotANewDemand { index: 0 })
        );
    }
}
