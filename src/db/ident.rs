//! Quoting of SQL identifiers. Names reach this point only after the schema
//! module validated them (`^\w+$`), so quoting is a second line of defence.

/// Quotes `name` as an SQLite identifier (`"name"`, inner quotes doubled).
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled_so_a_name_cannot_end_the_identifier() {
        assert_eq!(ident("posts"), "\"posts\"");
        assert_eq!(
            ident("a\"; DROP TABLE x; --"),
            "\"a\"\"; DROP TABLE x; --\""
        );
    }
}
