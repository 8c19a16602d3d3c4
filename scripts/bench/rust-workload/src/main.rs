//! A small program for the Rust build benchmark: parses JSON from stdin and, in the full build,
//! filters its string values with a regular expression.

use std::io::Read;

#[cfg(feature = "full")]
#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Entry {
    name: String,
    #[serde(default)]
    tags: Vec<String>,
}

fn main() {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        std::process::exit(2);
    }
    let value: serde_json::Value = match serde_json::from_str(&input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bad JSON: {e}");
            std::process::exit(2);
        }
    };
    #[cfg(feature = "full")]
    {
        let re = regex::Regex::new(r"^[a-z][a-z0-9_-]*$").unwrap_or_else(|_| std::process::exit(3));
        if let Ok(entries) = serde_json::from_value::<Vec<Entry>>(value.clone()) {
            for e in entries.iter().filter(|e| re.is_match(&e.name)) {
                println!("{} {:?}", e.name, e.tags);
            }
            return;
        }
    }
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
}
