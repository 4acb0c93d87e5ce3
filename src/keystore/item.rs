//! What imdsd's Secret Service items look like, and where the session bus
//! is (pure): one item per AWS profile, labelled `imdsd: AWS profile
//! NAME`, found by its attributes (`application = imdsd`, `profile =
//! NAME`), holding the profile's credentials-file section as its secret.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::environment::Environment;

/// The `application` attribute of every imdsd item.
pub(crate) const APPLICATION: &str = "imdsd";

/// The item's label, what a keyring app shows.
pub(crate) fn label(profile: &str) -> String {
    format!("imdsd: AWS profile {profile}")
}

/// The attributes that find profile `profile`'s item.
pub(crate) fn attributes(profile: &str) -> HashMap<&'static str, &str> {
    HashMap::from([("application", APPLICATION), ("profile", profile)])
}

/// Where the session bus is, as libdbus and zbus look for it:
/// `DBUS_SESSION_BUS_ADDRESS`, else the socket `$XDG_RUNTIME_DIR/bus`
/// (which the caller checks exists). `Err` says why there is none.
pub(crate) fn bus_address(env: &Environment) -> Result<BusAddress, String> {
    if let Some(address) = env
        .get("DBUS_SESSION_BUS_ADDRESS")
        .filter(|a| !a.is_empty())
    {
        return Ok(BusAddress::Given(address.to_string()));
    }
    match env.get("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Ok(BusAddress::Socket(PathBuf::from(dir).join("bus"))),
        None => Err("no D-Bus session: neither DBUS_SESSION_BUS_ADDRESS nor \
                     XDG_RUNTIME_DIR is set"
            .into()),
    }
}

/// A session bus address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BusAddress {
    /// `DBUS_SESSION_BUS_ADDRESS`, as it is.
    Given(String),
    /// The systemd user session's socket, if it exists.
    Socket(PathBuf),
}

impl BusAddress {
    /// The address in D-Bus syntax.
    pub(crate) fn to_dbus(&self) -> String {
        match self {
            BusAddress::Given(address) => address.clone(),
            BusAddress::Socket(path) => format!("unix:path={}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_item_per_profile_named_for_imdsd_and_the_profile() {
        assert_eq!(label("dev"), "imdsd: AWS profile dev");
        let attrs = attributes("dev");
        assert_eq!(attrs.get("application"), Some(&"imdsd"));
        assert_eq!(attrs.get("profile"), Some(&"dev"));
        assert_eq!(attrs.len(), 2);
    }

    #[test]
    fn the_bus_is_the_variable_else_the_runtime_directory_socket() {
        let env = Environment::from_pairs([
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/b"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]);
        assert_eq!(
            bus_address(&env).unwrap().to_dbus(),
            "unix:path=/tmp/b".to_string()
        );
        let env = Environment::from_pairs([("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(
            bus_address(&env).unwrap(),
            BusAddress::Socket(PathBuf::from("/run/user/1000/bus"))
        );
        assert_eq!(
            bus_address(&env).unwrap().to_dbus(),
            "unix:path=/run/user/1000/bus"
        );
        let problem = bus_address(&Environment::default()).unwrap_err();
        assert!(problem.starts_with("no D-Bus session"), "{problem}");
    }
}
