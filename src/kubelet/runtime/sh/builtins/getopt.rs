//! Command-line options as glibc's `getopt_long` reads them for the busybox applets that
//! take options anywhere on the line (`wget`, `nc`): bundled short options (`-qO-`), their
//! arguments attached or in the next word, long options with `=` or a separate argument and
//! abbreviated to any unambiguous prefix, operands mixed with options (argv is permuted) until
//! `--`; and glibc's messages for what it rejects.

/// How an option takes an argument.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Arg {
    No,
    Required,
    /// Only attached (`-n ARG` does not take the next word).
    Optional,
}

/// A long option: its name, how it takes an argument, the key it reports.
pub(super) type LongOpt = (&'static str, Arg, char);

/// The options and operands of a command line, in order.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    pub(super) opts: Vec<(char, Option<String>)>,
    pub(super) operands: Vec<String>,
}

impl Parsed {
    /// Whether option `key` was given.
    pub(super) fn has(&self, key: char) -> bool {
        self.opts.iter().any(|(k, _)| *k == key)
    }

    /// How many times option `key` was given.
    pub(super) fn count(&self, key: char) -> usize {
        self.opts.iter().filter(|(k, _)| *k == key).count()
    }

    /// The argument of the last `key` given.
    pub(super) fn last(&self, key: char) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .and_then(|(_, a)| a.as_deref())
    }

    /// The arguments of every `key` given, in order.
    pub(super) fn all(&self, key: char) -> Vec<&str> {
        self.opts
            .iter()
            .filter(|(k, _)| *k == key)
            .filter_map(|(_, a)| a.as_deref())
            .collect()
    }
}

/// Read `args` (without the program name) against the short options `short` (getopt's
/// syntax: a letter, `:` after it for a required argument, `::` for an optional one) and
/// `long`. `Err` is glibc's message for the first bad option (without the program name).
pub(super) fn getopt_long(
    args: &[String],
    short: &str,
    long: &[LongOpt],
) -> Result<Parsed, String> {
    let spec = short_spec(short);
    let mut parsed = Parsed::default();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if a == "--" {
            parsed.operands.extend(args.iter().skip(i).cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let (opt_name, kind, key) = find_long(long, name, a)?;
            let arg = match (kind, inline) {
                (Arg::No, Some(_)) => {
                    return Err(format!("option '--{opt_name}' doesn't allow an argument"))
                }
                (Arg::No, None) => None,
                (Arg::Optional, v) => v,
                (Arg::Required, Some(v)) => Some(v),
                (Arg::Required, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => return Err(format!("option '--{opt_name}' requires an argument")),
                },
            };
            parsed.opts.push((key, arg));
            continue;
        }
        let Some(letters) = a.strip_prefix('-').filter(|l| !l.is_empty()) else {
            parsed.operands.push(a.clone());
            continue;
        };
        for (pos, c) in letters.char_indices() {
            let Some(&(_, kind)) = spec.iter().find(|(k, _)| *k == c) else {
                return Err(format!("invalid option -- '{c}'"));
            };
            let rest = &letters[pos + c.len_utf8()..];
            match kind {
                Arg::No => parsed.opts.push((c, None)),
                Arg::Optional => {
                    parsed
                        .opts
                        .push((c, (!rest.is_empty()).then(|| rest.to_string())));
                    break;
                }
                Arg::Required => {
                    if !rest.is_empty() {
                        parsed.opts.push((c, Some(rest.to_string())));
                    } else if let Some(v) = args.get(i) {
                        i += 1;
                        parsed.opts.push((c, Some(v.clone())));
                    } else {
                        return Err(format!("option requires an argument -- '{c}'"));
                    }
                    break;
                }
            }
        }
    }
    Ok(parsed)
}

fn short_spec(short: &str) -> Vec<(char, Arg)> {
    let chars: Vec<char> = short.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        let mut kind = Arg::No;
        if chars.get(i) == Some(&':') {
            i += 1;
            kind = Arg::Required;
            if chars.get(i) == Some(&':') {
                i += 1;
                kind = Arg::Optional;
            }
        }
        out.push((c, kind));
    }
    out
}

/// The long option `name` stands for: an exact name, or the only one it abbreviates.
fn find_long(
    long: &[LongOpt],
    name: &str,
    word: &str,
) -> Result<(&'static str, Arg, char), String> {
    if let Some(&(n, kind, key)) = long.iter().find(|(n, _, _)| *n == name) {
        return Ok((n, kind, key));
    }
    let matches: Vec<&LongOpt> = if name.is_empty() {
        Vec::new()
    } else {
        long.iter()
            .filter(|(n, _, _)| n.starts_with(name))
            .collect()
    };
    match matches.as_slice() {
        [] => Err(format!(
            "unrecognized option '{}'",
            word.split('=').next().unwrap_or(word)
        )),
        [one] => Ok((one.0, one.1, one.2)),
        many => {
            // Abbreviations of options that are the same option are not ambiguous.
            if many.iter().all(|m| m.2 == many[0].2 && m.1 == many[0].1) {
                return Ok((many[0].0, many[0].1, many[0].2));
            }
            let names: Vec<String> = many.iter().map(|m| format!("'--{}'", m.0)).collect();
            Err(format!(
                "option '--{name}' is ambiguous; possibilities: {}",
                names.join(" ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const LONG: &[LongOpt] = &[
        ("output-document", Arg::Required, 'O'),
        ("spider", Arg::No, '\u{fd}'),
        ("server-response", Arg::No, 'S'),
    ];

    #[test]
    fn options_bundle_permute_and_abbreviate() {
        let p = getopt_long(
            &v(&[
                "http://x/",
                "-qO-",
                "--spid",
                "-T",
                "3",
                "--output-document=f",
                "--",
                "-q",
            ]),
            "qO:T:n::",
            LONG,
        )
        .unwrap();
        assert_eq!(p.operands, v(&["http://x/", "-q"]));
        assert!(p.has('q') && p.has('\u{fd}'));
        assert_eq!(p.last('O'), Some("f"));
        assert_eq!(p.all('O'), vec!["-", "f"]);
        assert_eq!(p.last('T'), Some("3"));
        let p = getopt_long(&v(&["-n", "x"]), "n::", LONG).unwrap();
        assert_eq!(p.operands, v(&["x"]));
    }

    #[test]
    fn bad_options_are_glibc_s_messages() {
        let e = |a: &[&str]| getopt_long(&v(a), "qO:", LONG).unwrap_err();
        assert_eq!(e(&["-z"]), "invalid option -- 'z'");
        assert_eq!(e(&["-O"]), "option requires an argument -- 'O'");
        assert_eq!(e(&["--nope=1"]), "unrecognized option '--nope'");
        assert_eq!(
            e(&["--output-document"]),
            "option '--output-document' requires an argument"
        );
        assert_eq!(
            e(&["--spider=1"]),
            "option '--spider' doesn't allow an argument"
        );
        assert_eq!(
            e(&["--s"]),
            "option '--s' is ambiguous; possibilities: '--spider' '--server-response'"
        );
    }
}
