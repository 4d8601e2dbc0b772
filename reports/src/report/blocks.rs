//! A report as blocks, and the blocks rendered to Markdown or HTML.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;

/// A report as blocks, rendered to Markdown or HTML.
pub(super) enum Block {
    Heading(String),
    Para(String),
    Table(Vec<String>, Vec<Vec<String>>),
    Image(&'static str, &'static str),
}

pub(super) fn to_markdown(doc: &[Block]) -> String {
    let mut out = String::new();
    let mut first = true;
    for b in doc {
        match b {
            Block::Heading(h) => {
                let level = if first { "#" } else { "##" };
                first = false;
                let _ = writeln!(out, "{level} {h}\n");
            }
            Block::Para(p) => {
                let _ = writeln!(out, "{p}\n");
            }
            Block::Table(head, rows) => {
                let cell = |c: &String| c.replace('|', "\\|");
                let _ = writeln!(
                    out,
                    "| {} |",
                    head.iter().map(cell).collect::<Vec<_>>().join(" | ")
                );
                let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
                for r in rows {
                    let _ = writeln!(
                        out,
                        "| {} |",
                        r.iter().map(cell).collect::<Vec<_>>().join(" | ")
                    );
                }
                out.push('\n');
            }
            Block::Image(name, alt) => {
                let _ = writeln!(out, "![{alt}]({name}.png)\n");
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Markdown's `**bold**` and `` `code` `` inside escaped HTML text.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(s).split("**").enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<strong>{part}</strong>");
        } else {
            out.push_str(part);
        }
    }
    let mut code = String::new();
    for (i, part) in out.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(code, "<code>{part}</code>");
        } else {
            code.push_str(part);
        }
    }
    code
}

pub(super) fn to_html(doc: &[Block], dir: &Path) -> std::io::Result<String> {
    let title = doc
        .iter()
        .find_map(|b| match b {
            Block::Heading(h) => Some(h.as_str()),
            _ => None,
        })
        .unwrap_or("gatebench report");
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:collapse;margin:1em 0;font-size:14px}}th,td{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}img{{max-width:100%;border:1px solid #eee}}</style></head><body>\n",
        escape(title)
    );
    let mut first = true;
    for b in doc {
        match b {
            Block::Heading(h) => {
                let tag = if first { "h1" } else { "h2" };
                first = false;
                let _ = writeln!(out, "<{tag}>{}</{tag}>", inline(h));
            }
            Block::Para(p) => {
                let _ = writeln!(out, "<p>{}</p>", inline(p));
            }
            Block::Table(head, rows) => {
                out.push_str("<table><tr>");
                for h in head {
                    let _ = write!(out, "<th>{}</th>", inline(h));
                }
                out.push_str("</tr>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for c in r {
                        let _ = write!(out, "<td>{}</td>", inline(c));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
            Block::Image(name, alt) => {
                let png = std::fs::read(dir.join(format!("{name}.png")))?;
                let data = base64::engine::general_purpose::STANDARD.encode(png);
                let _ = writeln!(
                    out,
                    "<p><img alt=\"{}\" src=\"data:image/png;base64,{data}\"></p>",
                    escape(alt)
                );
            }
        }
    }
    out.push_str("</body></html>\n");
    Ok(out)
}
