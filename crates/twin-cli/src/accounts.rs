//! `urbantwin accounts`: the administrator's commands on a store, for a first administrator and for scripts: add,
//! list and disable accounts, make and revoke API keys, and set who may read and write a dataset. Each change is
//! written to the audit log, as the same changes through the API are.

use std::io::Read as _;

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::json;
use twin_model::dataset::{Access, DEFAULT_DATASET};
use twin_model::policy::{Role, Scope};
use twin_model::Dataset;
use twin_store::trust::{Account, ApiKeyRecord};

#[derive(Args)]
pub struct AccountsArgs {
    #[command(subcommand)]
    command: AccountsCommand,
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create an account, e.g. the first administrator: `urbantwin accounts add admin --role admin
    /// --password-stdin < secret`.
    Add {
        id: String,
        /// Roles: admin, data_owner, planner, moderator, citizen, device (repeat the flag for several).
        #[arg(long = "role", default_value = "citizen")]
        roles: Vec<String>,
        /// Groups the account belongs to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long)]
        organisation: Option<String>,
        /// Read the password from standard input (without it, the account signs in with keys or the identity
        /// provider only).
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
    /// Print the accounts (JSON, without password hashes).
    List {
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
    /// Disable or enable an account (its sessions and keys stop or start working at once).
    Disable {
        id: String,
        #[arg(long)]
        enable: bool,
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
    /// Make an API key for an account and print it (it is shown once): e.g. a sensor's key with `--scope write`.
    Key {
        account: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// read, write, admin, read:<dataset> or write:<dataset> (repeatable; default read).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// When the key stops working (RFC 3339).
        #[arg(long)]
        expires: Option<DateTime<Utc>>,
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
    /// Revoke an API key (by its id, the part after `utk_`).
    Revoke {
        key: String,
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
    /// Set who may read or write a dataset: public, registered, private, or groups:a,b. With no dataset, the
    /// default one (entities written without naming a dataset). A dataset that does not exist yet is declared
    /// when --owner and --licence are given (e.g. the dataset an MQTT topic writes to).
    Access {
        #[arg(default_value = DEFAULT_DATASET)]
        dataset: String,
        /// The owner (an account, an organisation or a group) of a dataset declared here.
        #[arg(long)]
        owner: Option<String>,
        /// The licence (SPDX identifier or URL) of a dataset declared here.
        #[arg(long)]
        licence: Option<String>,
        /// The title of a dataset declared here (default: its id).
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        read: Option<String>,
        #[arg(long)]
        write: Option<String>,
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
    /// Check the audit log's hash chain; exits with an error when a record was changed or removed.
    VerifyAudit {
        #[arg(long, env = "URBANTWIN_DB", default_value = "./urbantwin.db")]
        db: String,
    },
}

/// Who the CLI acts as in the audit log.
fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn parse_access(s: &str) -> Result<Access> {
    Ok(match s {
        "public" => Access::Public,
        "registered" => Access::Registered,
        "private" => Access::Private,
        g if g.starts_with("groups:") => Access::Groups(
            g["groups:".len()..]
                .split(',')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect(),
        ),
        other => bail!("access {other:?}: public, registered, private or groups:a,b"),
    })
}

pub async fn run(args: AccountsArgs) -> Result<()> {
    let err = |e: twin_model::NgsiError| anyhow!("{}", e.detail);
    match args.command {
        AccountsCommand::Add {
            id,
            roles,
            groups,
            organisation,
            password_stdin,
            db,
        } => {
            if let Some(r) = roles.iter().find(|r| Role::parse(r).is_none()) {
                bail!("role {r:?}: admin, data_owner, planner, moderator, citizen or device");
            }
            let password_hash = if password_stdin {
                let mut p = String::new();
                std::io::stdin().read_to_string(&mut p)?;
                let p = p.trim_end_matches(['\n', '\r']).to_string();
                twin_auth::password::check_strength(&p).map_err(|e| anyhow!("{e}"))?;
                Some(twin_auth::password::hash(&p).map_err(|e| anyhow!("{e}"))?)
            } else {
                None
            };
            let store = crate::open_store(&db).await?;
            let now = Utc::now();
            let a = Account {
                id: id.clone(),
                display_name: None,
                email: None,
                password_hash,
                roles: roles.clone(),
                groups: groups.clone(),
                organisation: organisation.clone(),
                disabled: false,
                created_at: now,
                updated_at: now,
            };
            store.put_account(a, true).await.map_err(err)?;
            store
                .append_audit(
                    &actor(),
                    "account.create",
                    &id,
                    json!({"roles": roles, "groups": groups, "organisation": organisation}),
                )
                .await
                .map_err(err)?;
            println!("account {id} created");
        }
        AccountsCommand::List { db } => {
            let store = crate::open_store(&db).await?;
            let all: Vec<_> = store
                .list_accounts()
                .await
                .map_err(err)?
                .iter()
                .map(|a| {
                    json!({"id": a.id, "roles": a.roles, "groups": a.groups, "organisation": a.organisation,
                           "disabled": a.disabled, "hasPassword": a.password_hash.is_some(), "createdAt": a.created_at})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        AccountsCommand::Disable { id, enable, db } => {
            let store = crate::open_store(&db).await?;
            let mut a = store
                .get_account(&id)
                .await
                .map_err(err)?
                .ok_or_else(|| anyhow!("account {id} does not exist"))?;
            a.disabled = !enable;
            a.updated_at = Utc::now();
            store.put_account(a, false).await.map_err(err)?;
            store
                .append_audit(
                    &actor(),
                    "account.update",
                    &id,
                    json!({"disabled": !enable}),
                )
                .await
                .map_err(err)?;
            println!(
                "account {id} {}",
                if enable { "enabled" } else { "disabled" }
            );
        }
        AccountsCommand::Key {
            account,
            name,
            scopes,
            expires,
            db,
        } => {
            let scopes = if scopes.is_empty() {
                vec!["read".to_string()]
            } else {
                scopes
            };
            for s in &scopes {
                s.parse::<Scope>()
                    .map_err(|e| anyhow!("scope {s:?}: {}", e.detail))?;
            }
            let store = crate::open_store(&db).await?;
            if store.get_account(&account).await.map_err(err)?.is_none() {
                bail!("account {account} does not exist");
            }
            let new = twin_auth::apikey::generate();
            let rec = ApiKeyRecord {
                id: new.id.clone(),
                account_id: account.clone(),
                name,
                hash: new.hash.clone(),
                scopes: scopes.clone(),
                created_at: Utc::now(),
                expires_at: expires,
                revoked_at: None,
                last_used_at: None,
            };
            store.put_api_key(rec).await.map_err(err)?;
            store
                .append_audit(
                    &actor(),
                    "key.create",
                    &new.id,
                    json!({"account": account, "scopes": scopes, "expiresAt": expires}),
                )
                .await
                .map_err(err)?;
            // the secret on standard output alone, for scripts
            println!("{}", new.secret);
        }
        AccountsCommand::Revoke { key, db } => {
            let store = crate::open_store(&db).await?;
            if !store.revoke_api_key(&key, Utc::now()).await.map_err(err)? {
                bail!("API key {key} does not exist");
            }
            store
                .append_audit(&actor(), "key.revoke", &key, json!({}))
                .await
                .map_err(err)?;
            println!("API key {key} revoked");
        }
        AccountsCommand::Access {
            dataset,
            owner,
            licence,
            title,
            read,
            write,
            db,
        } => {
            let store = crate::open_store(&db).await?;
            let mut d = match (store.get_dataset(&dataset).await.map_err(err)?, owner, licence) {
                (Some(d), _, _) => d,
                (None, None, None) if dataset == DEFAULT_DATASET => Dataset::default_dataset(),
                (None, Some(owner), Some(licence)) => {
                    let mut d = Dataset::default_dataset();
                    d.title = title.unwrap_or_else(|| dataset.clone());
                    d.description = None;
                    d.id = dataset.clone();
                    d.owner = owner;
                    d.licence = licence;
                    d.read = Access::Public;
                    d.write = Access::Private;
                    d.created_at = Some(Utc::now());
                    d
                }
                (None, _, _) => bail!(
                    "dataset {dataset} does not exist; declare it with --owner and --licence (and --title)"
                ),
            };
            let before = json!({"read": d.read, "write": d.write});
            if let Some(r) = read {
                d.read = parse_access(&r)?;
            }
            if let Some(w) = write {
                d.write = parse_access(&w)?;
            }
            d.validate().map_err(err)?;
            let after = json!({"read": d.read, "write": d.write});
            store.put_dataset(d).await.map_err(err)?;
            store
                .append_audit(
                    &actor(),
                    "dataset.policy",
                    &dataset,
                    json!({"before": before, "after": after}),
                )
                .await
                .map_err(err)?;
            println!("{dataset}: {after}");
        }
        AccountsCommand::VerifyAudit { db } => {
            let store = crate::open_store(&db).await?;
            let v = store.verify_audit().await.map_err(err)?;
            if !v.ok {
                bail!(
                    "the audit log was tampered with: record {:?}: {}",
                    v.first_bad_seq,
                    v.reason.unwrap_or_default()
                );
            }
            println!("the audit log's {} records are intact", v.records);
        }
    }
    Ok(())
}
