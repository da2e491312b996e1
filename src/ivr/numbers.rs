//! Spoken numbers: a count ("您前面还有 N 位", "预计等待 N 分钟") read out in Mandarin from the
//! digit prompts and the prompts for 十, 百, 千 and 两, never from a recording with the number
//! baked in.
//!
//! Owns how a count is read; must not know which sound files exist nor play anything.

use super::config::Digit;
use super::keys::digit_prompt;

/// 十 (ten).
pub const TEN: &str = "number_ten";
/// 百 (hundred).
pub const HUNDRED: &str = "number_hundred";
/// 千 (thousand).
pub const THOUSAND: &str = "number_thousand";
/// 两: "two" before a measure word, 百 or 千 (两位, 两百), where 二 would be wrong.
pub const TWO_COUNTED: &str = "number_two_counted";

/// Every prompt a spoken count may use.
pub fn count_prompts() -> Vec<String> {
    let mut prompts: Vec<String> = ('0'..='9')
        .filter_map(Digit::new)
        .map(digit_prompt)
        .collect();
    prompts.extend([TEN, HUNDRED, THOUSAND, TWO_COUNTED].map(str::to_owned));
    prompts
}

/// The largest count read out; more is read as this (nobody waits behind ten thousand callers).
pub const MAX_SPOKEN: u32 = 9999;

/// The prompts reading `n` as a count before a measure word: 0 零, 2 两, 10 十, 12 十二,
/// 20 二十, 105 一百零五, 110 一百一十, 200 两百, 2002 两千零二.
pub fn spoken_count(n: u32) -> Vec<String> {
    let n = n.min(MAX_SPOKEN);
    let digit = |d: u32| {
        let key = char::from_digit(d, 10).and_then(Digit::new);
        key.map(digit_prompt).unwrap_or_default()
    };
    if n == 0 {
        return vec![digit(0)];
    }
    let places = [
        (n / 1000, Some(THOUSAND)),
        (n / 100 % 10, Some(HUNDRED)),
        (n / 10 % 10, Some(TEN)),
        (n % 10, None),
    ];
    let mut out = Vec::new();
    let mut started = false;
    let mut zero_pending = false;
    for (d, unit) in places {
        if d == 0 {
            zero_pending |= started;
            continue;
        }
        if zero_pending {
            out.push(digit(0));
            zero_pending = false;
        }
        let leading_ten = !started && d == 1 && unit == Some(TEN);
        if !leading_ten {
            let counted_two = !started && d == 2 && unit != Some(TEN);
            out.push(if counted_two {
                TWO_COUNTED.to_owned()
            } else {
                digit(d)
            });
        }
        out.extend(unit.map(str::to_owned));
        started = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(n: u32) -> String {
        spoken_count(n)
            .iter()
            .map(|p| match p.as_str() {
                TEN => "十".to_owned(),
                HUNDRED => "百".to_owned(),
                THOUSAND => "千".to_owned(),
                TWO_COUNTED => "两".to_owned(),
                digit => {
                    let d = digit.trim_start_matches("digit_");
                    "零一二三四五六七八九"
                        .chars()
                        .nth(d.parse().unwrap())
                        .unwrap()
                        .to_string()
                }
            })
            .collect()
    }

    #[test]
    fn counts_read_as_mandarin_speakers_say_them() {
        let cases = [
            (0, "零"),
            (1, "一"),
            (2, "两"),
            (3, "三"),
            (10, "十"),
            (12, "十二"),
            (20, "二十"),
            (22, "二十二"),
            (99, "九十九"),
            (100, "一百"),
            (105, "一百零五"),
            (110, "一百一十"),
            (200, "两百"),
            (222, "两百二十二"),
            (1010, "一千零一十"),
            (2002, "两千零二"),
            (9999, "九千九百九十九"),
            (123_456, "九千九百九十九"),
        ];
        for (n, text) in cases {
            assert_eq!(read(n), text, "{n}");
        }
    }

    #[test]
    fn every_prompt_a_count_uses_is_listed() {
        let listed = count_prompts();
        for n in 0..=MAX_SPOKEN {
            for prompt in spoken_count(n) {
                assert!(listed.contains(&prompt), "{n}: {prompt}");
            }
        }
    }
}
