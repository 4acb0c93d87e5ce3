//! Where each role is served: the URLs and token files client commands
//! (`imdsd exec`, `env`, `credential-process`) point SDKs at. Built from the
//! daemon's view (pure). Names no secret: token *files*, never tokens.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::view::View;

/// Every role's endpoints, and the region SDKs should use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub(crate) region: String,
    pub(crate) roles: BTreeMap<String, RoleEndpoints>,
}

/// Where one role is served.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RoleEndpoints {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` values, with their token file.
    pub(crate) container: Vec<ContainerEndpoint>,
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT` values.
    pub(crate) imds: Vec<String>,
    /// The region of its own (an on-demand profile's `region`), else the
    /// daemon's applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ContainerEndpoint {
    pub(crate) url: String,
    pub(crate) token_file: String,
}

/// The endpoints in `view`; every configured role appears, served or not.
pub(crate) fn build(view: &View) -> Endpoints {
    let mut roles: BTreeMap<String, RoleEndpoints> = view
        .roles
        .load()
        .keys()
        .map(|name| (name.clone(), RoleEndpoints::default()))
        .collect();
    for (name, region) in &view.profile_regions {
        if let Some(entry) = roles.get_mut(name) {
            entry.region = Some(region.clone());
        }
    }
    for l in &view.listeners {
        for role in l.roles.iter().map(|slot| slot.name()) {
            let entry = roles.entry(role.to_string()).or_default();
            match &l.token_files {
                Some(files) => entry.container.push(ContainerEndpoint {
                    url: format!("{}/role/{role}", base_url(l.addr)),
                    token_file: files.path(role).display().to_string(),
                }),
                None => entry.imds.push(base_url(l.addr)),
            }
        }
    }
    Endpoints {
        region: view.region.clone(),
        roles,
    }
}

/// `http://ADDR`, without the port when it is 80 (what SDKs are given).
fn base_url(addr: SocketAddr) -> String {
    if addr.port() == 80 {
        let host = match addr {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        format!("http://{host}")
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenFiles;
    use crate::metrics::Metrics;
    use crate::refresh::directory::RoleDirectory;
    use crate::refresh::slot::RoleSlot;
    use crate::view::ListenerView;
    use std::path::PathBuf;
    use std::sync::Arc;

    fn listener(addr: &str, roles: &[&str], tokens: Option<&str>) -> ListenerView {
        ListenerView {
            addr: addr.parse().unwrap(),
            protocol: if tokens.is_some() {
                "container"
            } else {
                "imds"
            },
            roles: roles.iter().map(|r| RoleSlot::new(*r)).collect(),
            allow_v1: false,
            token_files: tokens.map(|dir| TokenFiles {
                dir: PathBuf::from(dir),
                owner: None,
                group: None,
                mode: 0o600,
            }),
            stats: Arc::new(Metrics::default().listener_stats(addr.into())),
        }
    }

    #[test]
    fn every_role_lists_its_container_urls_token_files_and_imds_urls() {
        let roles = RoleDirectory::default();
        roles.insert(["dev", "ops", "idle"].map(RoleSlot::new));
        let view = View {
            roles,
            listeners: vec![
                listener("127.0.0.1:16925", &["dev"], None),
                listener("127.0.0.1:16927", &["dev", "ops"], Some("/run/t")),
                listener("169.254.170.23:80", &["ops"], Some("/run/u")),
            ],
            region: "eu-west-1".into(),
            on_demand: Default::default(),
            profile_regions: [("ops".to_string(), "eu-central-1".to_string())].into(),
        };
        let e = build(&view);
        assert_eq!(e.roles["ops"].region.as_deref(), Some("eu-central-1"));
        assert_eq!(e.roles["dev"].region, None);
        assert_eq!(e.region, "eu-west-1");
        assert_eq!(
            e.roles["dev"].imds,
            vec!["http://127.0.0.1:16925".to_string()]
        );
        assert_eq!(
            e.roles["dev"].container,
            vec![ContainerEndpoint {
                url: "http://127.0.0.1:16927/role/dev".into(),
                token_file: "/run/t/dev.token".into(),
            }]
        );
        assert_eq!(
            e.roles["ops"].container[1].url,
            "http://169.254.170.23/role/ops"
        );
        assert_eq!(e.roles["idle"], RoleEndpoints::default());
    }
}
