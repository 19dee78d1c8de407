//! Render one canonical rule for one target to stdout (development aid).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rule = rulecast::load::rule_from_file(std::path::Path::new(&args[1])).unwrap_or_else(|d| {
        eprintln!("{d}");
        std::process::exit(1)
    });
    let t = match args[2].as_str() {
        "sentinel" => rulecast::Target::Sentinel,
        "elastic" => rulecast::Target::Elastic,
        _ => rulecast::Target::Panther,
    };
    match rulecast::compile(&rule, t, rulecast::Unsupported::Warn) {
        Ok(o) => {
            for n in o.notes.iter() {
                eprintln!("{n}");
            }
            for (p, text) in o.files {
                println!("--- {p} ---\n{text}");
            }
        }
        Err(d) => eprintln!("{d}"),
    }
}
