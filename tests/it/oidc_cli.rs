//! `passgate client …` and `passgate keys rotate` as an operator runs them.

use serde_json::Value;

use crate::backend_test;
use crate::cli::passgate_installed;

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

backend_test! {
    async fn clients_and_keys_are_managed_from_the_command_line(backend) {
        let (base, _dir, _db) = passgate_installed(backend);
        let run = |args: &[&str]| {
            let mut cmd = crate::cli::passgate();
            cmd.envs(crate::cli::same_env(&base));
            cmd.args(args).output().unwrap()
        };
        assert!(run(&["tenant", "create", "acme"]).status.success());
        let out = run(&["client", "create", "--tenant", "acme", "--name", "CRM", "--redirect-uri", "https://crm.example.com/cb"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let created = json_lines(&out);
        assert_eq!(created.len(), 1);
        let id = created[0]["client_id"].as_str().unwrap().to_string();
        assert_eq!(created[0]["client_secret"].as_str().unwrap().len(), 43, "256 bits, base64url");

        let out = run(&["client", "create", "--tenant", "acme", "--name", "Bad", "--redirect-uri", "https://*.example.com/cb"]);
        assert!(!out.status.success() && out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("wildcard"));

        let out = run(&["client", "rotate-secret", "--tenant", "acme", &id]);
        let rotated = json_lines(&out);
        assert_ne!(rotated[0]["client_secret"], created[0]["client_secret"]);

        let listed = json_lines(&run(&["client", "list", "--tenant", "acme"]));
        assert_eq!(listed.len(), 1);
        assert!(listed[0].get("client_secret").is_none());

        let out = run(&["keys", "rotate", "--tenant", "acme"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json_lines(&out)[0]["new_kids"].as_array().unwrap().len(), 2);

        assert!(run(&["client", "delete", "--tenant", "acme", &id]).status.success());
        assert!(json_lines(&run(&["client", "list", "--tenant", "acme"])).is_empty());
    }
}
