//! The engine's keypad: what a key means in each phase (the leak key first, then the consent
//! key during the notice, a menu's options, a key entry's digits and terminator), and what a
//! wrong key or silence does at a menu or an entry.

use super::*;

impl CallEngine {
    pub(super) fn on_digit(&mut self, digit: Digit, now: Instant, out: &mut Vec<Action>) {
        let leak_digit = self.config.leak.digit;
        let leak_active = matches!(
            self.phase,
            Phase::Intro { .. }
                | Phase::Playing { .. }
                | Phase::Menu { .. }
                | Phase::HangingUp { .. }
                | Phase::Queued {
                    leak: false,
                    transferring: false,
                    ..
                }
        );
        if digit == leak_digit && leak_active {
            if let Phase::Queued { .. } = self.phase {
                // Moves the call from its queue to the emergency queue.
                out.push(Action::Dequeue);
            }
            return self.enter_leak(now, out);
        }
        match &mut self.phase {
            Phase::Intro { .. } => self.consent_digit(digit, now, out),
            Phase::Menu { .. } => self.menu_digit(digit, now, out),
            Phase::Survey { .. } => self.survey_digit(digit, now, out),
            Phase::Collect {
                playback,
                timer,
                entry,
                node,
                ..
            } => {
                if playback.take().is_some() {
                    out.push(Action::StopPlayback);
                }
                if let Some(id) = timer.take() {
                    out.push(Action::CancelTimer { id });
                }
                let Some(collect) = collect_at(&self.config, self.choice.as_ref(), node) else {
                    return;
                };
                let (max_len, terminator, timeout) =
                    (collect.max_len, collect.terminator, collect.timeout_secs);
                if digit == terminator {
                    return self.finish_entry(now, out);
                }
                entry.push(digit.as_char());
                if entry.len() >= max_len {
                    return self.finish_entry(now, out);
                }
                let id = self.timer(Duration::from_secs(timeout), now, out);
                if let Phase::Collect { timer, .. } = &mut self.phase {
                    *timer = Some(id);
                }
            }
            _ => {}
        }
    }

    pub(super) fn consent_digit(&mut self, digit: Digit, now: Instant, out: &mut Vec<Action>) {
        let rec = &self.config.recording;
        let decision = match rec.policy {
            RecordingPolicy::OptOut if digit == rec.opt_out_digit => ConsentDecision::Refused,
            RecordingPolicy::OptIn if digit == rec.opt_in_digit => ConsentDecision::Given,
            _ => return,
        };
        self.stop_current(out);
        self.consent(decision, ConsentHow::PressedDigit, now, out);
        self.enter_start(now, out);
    }

    pub(super) fn menu_digit(&mut self, digit: Digit, now: Instant, out: &mut Vec<Action>) {
        let config = Arc::clone(&self.config);
        let Phase::Menu { node, .. } = &self.phase else {
            return;
        };
        let node = node.clone();
        self.stop_current(out);
        let Some(menu) = menu_at(&config, self.choice.as_ref(), &node) else {
            return self.enter_last_resort(out);
        };
        match menu.options.iter().find(|o| o.digit == digit) {
            Some(option) => {
                path_step(node, Some(digit.to_string()), out);
                self.enter_node(option.next.clone(), now, out);
            }
            None => self.menu_failed(true, now, out),
        }
    }

    /// A wrong key (`invalid`) or silence at a menu: repeat, or after the retries the fallback.
    pub(super) fn menu_failed(&mut self, invalid: bool, now: Instant, out: &mut Vec<Action>) {
        let config = Arc::clone(&self.config);
        let Phase::Menu { node, failures, .. } = &self.phase else {
            return;
        };
        let (node, failures) = (node.clone(), *failures + 1);
        let Some(menu) = menu_at(&config, self.choice.as_ref(), &node) else {
            return self.enter_last_resort(out);
        };
        if failures > menu.retries {
            path_step(node, Some("retries_exhausted".into()), out);
            return self.enter_node(menu.fallback.clone(), now, out);
        }
        let mut prompts = vec![if invalid {
            menu.invalid_prompt.clone()
        } else {
            menu.no_input_prompt.clone()
        }];
        prompts.extend(menu.spoken(&config.leak));
        let playback = self.play(prompts, true, out);
        self.phase = Phase::Menu {
            node,
            playback: Some(playback),
            timer: None,
            failures,
        };
    }

    /// The entry is complete (terminator, full length or silence after a key).
    pub(super) fn finish_entry(&mut self, now: Instant, out: &mut Vec<Action>) {
        let config = Arc::clone(&self.config);
        let Phase::Collect {
            node,
            entry,
            failures,
            timer,
            ..
        } = &mut self.phase
        else {
            return;
        };
        if let Some(id) = timer.take() {
            out.push(Action::CancelTimer { id });
        }
        let (node, entry, failures) = (node.clone(), std::mem::take(entry), *failures);
        let collect = collect_at(&config, self.choice.as_ref(), &node);
        let Some(collect) = collect else {
            return self.enter_last_resort(out);
        };
        if entry.len() == 1 && entry.starts_with(config.leak.digit.as_char()) {
            return self.enter_leak(now, out);
        }
        let valid = (collect.min_len..=collect.max_len).contains(&entry.len())
            && entry.bytes().all(|b| b.is_ascii_digit());
        if valid {
            out.push(Action::Ticket(TicketUpdate::Variable {
                name: collect.variable.clone(),
                value: entry,
            }));
            path_step(node, Some(format!("<{}>", collect.variable)), out);
            return self.enter_node(collect.next.clone(), now, out);
        }
        self.collect_failed(node, failures + 1, entry.is_empty(), now, out);
    }

    pub(super) fn collect_failed(
        &mut self,
        node: String,
        failures: u32,
        silent: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let config = Arc::clone(&self.config);
        let collect = collect_at(&config, self.choice.as_ref(), &node);
        let Some(collect) = collect else {
            return self.enter_last_resort(out);
        };
        if failures > collect.retries {
            path_step(node, Some("retries_exhausted".into()), out);
            return self.enter_node(collect.fallback.clone(), now, out);
        }
        let mut prompts = vec![if silent {
            collect.no_input_prompt.clone()
        } else {
            collect.invalid_prompt.clone()
        }];
        prompts.extend(collect.spoken());
        let playback = self.play(prompts, true, out);
        self.phase = Phase::Collect {
            node,
            playback: Some(playback),
            timer: None,
            entry: String::new(),
            failures,
        };
    }
}
