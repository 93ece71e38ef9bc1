//! A tiny argument parser: `--flag value`, `--flag=value` and boolean `--flag`.

use std::str::FromStr;

/// Parsed `--name value` options, consumed by the subcommand.
#[derive(Debug)]
pub(crate) struct Args {
    items: Vec<(String, Option<String>)>,
}

impl Args {
    /// Splits `args` into options. `booleans` names the flags that take no value.
    pub(crate) fn parse(args: &[String], booleans: &[&str]) -> Result<Args, String> {
        let mut items = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument `{a}`"));
            };
            if let Some((n, v)) = name.split_once('=') {
                items.push((n.to_string(), Some(v.to_string())));
            } else if booleans.contains(&name) {
                items.push((name.to_string(), None));
            } else {
                let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                items.push((name.to_string(), Some(v.clone())));
            }
        }
        Ok(Args { items })
    }

    /// Whether boolean `--name` was given.
    pub(crate) fn flag(&mut self, name: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|(n, _)| n != name);
        before != self.items.len()
    }

    /// The last value of `--name`, parsed; `default` when absent.
    pub(crate) fn get<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.get_opt(name)?.unwrap_or(default))
    }

    /// The last value of `--name`, parsed, if given.
    pub(crate) fn get_opt<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        let all = self.get_all(name)?;
        Ok(all.into_iter().last())
    }

    /// Every value of a repeatable `--name`, parsed.
    pub(crate) fn get_all<T: FromStr>(&mut self, name: &str) -> Result<Vec<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        let mut out = Vec::new();
        let mut rest = Vec::new();
        for (n, v) in self.items.drain(..) {
            if n == name {
                let v = v.ok_or_else(|| format!("--{name} needs a value"))?;
                out.push(v.parse::<T>().map_err(|e| format!("--{name} {v}: {e}"))?);
            } else {
                rest.push((n, v));
            }
        }
        self.items = rest;
        Ok(out)
    }

    /// Fails on any option not consumed.
    pub(crate) fn finish(self) -> Result<(), String> {
        match self.items.first() {
            None => Ok(()),
            Some((n, _)) => Err(format!("unknown option --{n} (see `pastry help`)")),
        }
    }
}
