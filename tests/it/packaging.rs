//! The container image and the schedules that run it. Docker, Kubernetes and Azure cannot run
//! here, so what can be checked without them is: the Dockerfile builds with the cargo command
//! `.ci/run` runs (and checks static) and runs mfactl as a non-root user on a static base; and
//! docs/automation.md's Kubernetes CronJob and Container Apps job run mfactl as written, signed in
//! the way those platforms make it (a projected service-account token; a managed identity
//! endpoint), against the emulator.

use std::path::Path;

use mfactl_emulator::Tenant;
use mfactl_emulator::token::federated_assertion;
use serde_json::Value;

use crate::support::{Scenario, mfactl, repo_file, stderr, stdout};

/// The text of the markdown section that starts with `heading`, up to the next `## `.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no section {heading}"));
    let rest = &text[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The `n`th fenced block of `language` in `text`.
fn block<'a>(text: &'a str, language: &str, n: usize) -> &'a str {
    text.split(&format!("```{language}\n"))
        .nth(n + 1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("no {language} block {n}"))
}

/// A shell or Dockerfile text with its `\`-continued lines joined and runs of spaces made one.
fn joined(text: &str) -> String {
    text.replace("\\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_dockerfile_builds_the_binary_ci_checks_and_runs_it_unprivileged() {
    let dockerfile = repo_file("Dockerfile");
    let steps: Vec<String> = dockerfile
        .replace("\\\n", " ")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(joined)
        .collect();
    let build = steps
        .iter()
        .find_map(|step| {
            let at = step.find("cargo build ")?;
            Some(step[at..].split(" &&").next().unwrap().to_owned())
        })
        .expect("the Dockerfile runs cargo build");
    let ci = repo_file(".ci/run");
    let checked = ci
        .lines()
        .find_map(|line| line.strip_prefix("step \"static binary\" "))
        .expect(".ci/run builds the static binary");
    assert_eq!(build, checked.trim(), "the Dockerfile and .ci/run disagree");
    assert!(
        build.contains("--target x86_64-unknown-linux-musl"),
        "{build}"
    );
    assert!(build.contains("--locked"), "{build}");

    // The image: the last stage, from a static base, as a user that is not root.
    let last = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(
        last.starts_with("gcr.io/distroless/static"),
        "final base: {last}"
    );
    let user = last
        .lines()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("the final stage names its user");
    let uid = user.split(':').next().unwrap();
    assert!(!["0", "root"].contains(&uid), "runs as {user}");
    assert!(
        last.contains("ENTRYPOINT [\"/usr/local/bin/mfactl\"]"),
        "{last}"
    );
    // The documented way in matches: the CronJob runs as the image's user.
    let kubernetes = kubernetes_objects();
    let pod = &kubernetes.cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"].to_string(), uid);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
}

/// The Kubernetes objects of docs/automation.md's CronJob example.
struct KubernetesExample {
    service_account: Value,
    baseline: String,
    cron_job: Value,
    federated_subject: String,
}

fn kubernetes_objects() -> KubernetesExample {
    let doc = repo_file("docs/automation.md");
    let text = section(&doc, "## Kubernetes CronJob");
    let objects: Vec<Value> = block(text, "yaml", 0)
        .split("\n---\n")
        .map(|object| serde_saphyr::from_str(object).expect("each object parses"))
        .collect();
    let kind = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
            .clone()
    };
    let configuration = kind("ConfigMap");
    let credential = joined(block(text, "sh", 0));
    let federated_subject = credential
        .split_once("--subject ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("the federated credential names its subject")
        .to_owned();
    KubernetesExample {
        service_account: kind("ServiceAccount"),
        baseline: configuration["data"]["baseline.yaml"]
            .as_str()
            .unwrap()
            .to_owned(),
        cron_job: kind("CronJob"),
        federated_subject,
    }
}

const ISSUER: &str = "https://eastus.oic.prod-aks.azure.com/9c0e5f1a-0000-4000-8000-000000000001/";
const ROLES: &str = "[UserAuthenticationMethod.Read.All, Policy.Read.All, User.Read.All, \
     Organization.Read.All]";

/// examples/tenant.yaml, signing in like Entra ID with one more `apps:` entry.
fn example_tenant_with(app: &str) -> Tenant {
    let mut text = repo_file("examples/tenant.yaml");
    text.push_str(&format!(
        "auth:\n  identityHeader: emulator-only-identity-header\n  apps:\n{app}"
    ));
    Tenant::from_yaml_str(&text).expect("the tenant with an auth section loads")
}

/// The pod's arguments, run in `home` with `/config` (the ConfigMap's mount) at `config`.
fn pod_command(job: &Value, config: &Path) -> Vec<String> {
    let pod = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .expect("the ConfigMap is mounted")["mountPath"]
        .as_str()
        .unwrap()
        .to_owned();
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| {
            let arg = arg.as_str().unwrap();
            match arg.strip_prefix(&mount) {
                Some(rest) => format!("{}{rest}", config.display()),
                None => arg.to_owned(),
            }
        })
        .collect()
}

#[test]
fn the_kubernetes_cronjob_signs_in_with_its_projected_token_and_plans() {
    let example = kubernetes_objects();
    let account = &example.service_account;
    let client_id = account["metadata"]["annotations"]["azure.workload.identity/client-id"]
        .as_str()
        .unwrap();
    // The subject a projected token of this service account carries, and the one the doc's
    // federated credential trusts, are one.
    let subject = format!(
        "system:serviceaccount:{}:{}",
        account["metadata"]["namespace"].as_str().unwrap(),
        account["metadata"]["name"].as_str().unwrap()
    );
    assert_eq!(example.federated_subject, subject);
    let template = &example.cron_job["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(
        template["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    assert_eq!(
        template["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );

    let scenario = Scenario::new(example_tenant_with(&format!(
        "    - clientId: {client_id}\n      federatedSubject: \"{subject}\"\n      \
         federatedIssuer: {ISSUER}\n      roles: {ROLES}\n"
    )));
    let config = scenario.dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("baseline.yaml"), &example.baseline).unwrap();
    let token = scenario.write(
        "azure-identity-token",
        &federated_assertion(&subject, ISSUER, std::time::Duration::from_secs(3600)),
    );
    // What the workload identity webhook sets (its authority host ends with a slash).
    let out = mfactl()
        .current_dir(scenario.dir.path())
        .args(pod_command(&example.cron_job, &config))
        .env("AZURE_CLIENT_ID", client_id)
        .env("AZURE_TENANT_ID", scenario.tenant().tenant_id)
        .env("AZURE_FEDERATED_TOKEN_FILE", &token)
        .env("AZURE_AUTHORITY_HOST", format!("{}/", scenario.url()))
        .env("MFACTL_GRAPH_URL", scenario.url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "drift: {}", stderr(&out));
    assert!(
        stderr(&out).contains("Signed in with workload (client 2b1a"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("Plan: "), "{}", stdout(&out));
    let stats = scenario.stats();
    assert_eq!(stats.writes, 0, "plan writes nothing: {stats:?}");
}

#[test]
fn the_container_apps_job_signs_in_with_its_managed_identity_and_plans() {
    let doc = repo_file("docs/automation.md");
    let text = section(&doc, "## Azure Container Apps job");
    let image = block(text, "dockerfile", 0);
    let command: Vec<String> = image
        .lines()
        .find_map(|line| line.strip_prefix("CMD "))
        .map(|json| serde_json::from_str(json).expect("CMD is a JSON array"))
        .expect("the image names its command");
    let baked = image
        .lines()
        .find_map(|line| line.strip_prefix("COPY "))
        .and_then(|copy| copy.split_whitespace().nth(1))
        .expect("the image copies the baseline in");
    let job = joined(block(text, "sh", 0));
    let variables: Vec<(String, String)> = job
        .split(" --env-vars ")
        .nth(1)
        .expect("the job sets variables")
        .split(" --")
        .next()
        .unwrap()
        .split_whitespace()
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let client_id = &variables
        .iter()
        .find(|(name, _)| name == "AZURE_CLIENT_ID")
        .expect("a user-assigned identity is named")
        .1;

    let scenario = Scenario::new(example_tenant_with(&format!(
        "    - clientId: {client_id}\n      managedIdentity: true\n      roles: {ROLES}\n"
    )));
    // The image's working folder is the nonroot user's home, where the baseline was copied.
    let home = scenario.dir.path();
    assert_eq!(Path::new(baked).parent(), Some(Path::new("/home/nonroot")));
    let baseline = kubernetes_objects().baseline;
    std::fs::write(home.join(Path::new(baked).file_name().unwrap()), baseline).unwrap();
    let mut cmd = mfactl();
    cmd.current_dir(home)
        .args(&command)
        .envs(variables.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .env("IDENTITY_ENDPOINT", scenario.emulator().identity_endpoint())
        .env("IDENTITY_HEADER", "emulator-only-identity-header")
        .env("MFACTL_GRAPH_URL", scenario.url());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "drift: {}", stderr(&out));
    assert!(
        stderr(&out).contains("Signed in with managed (user-assigned identity 2b1a"),
        "{}",
        stderr(&out)
    );
    assert_eq!(scenario.stats().writes, 0);
}
