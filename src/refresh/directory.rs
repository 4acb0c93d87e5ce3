//! The one list of running roles: every role's slot by name, published
//! lock-free for readers.
//!
//! The daemon (`app`) is its only writer: it adds a role's slot before the
//! role's refresher runs (so a chained role finds its source on its first
//! fetch) and forgets it once the role is stopped. Everything that needs
//! the roles reads this one list: a chained role's fetch, the control
//! socket (`status`, `mfa`, `refresh`), readiness, and the profile watch.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::slot::RoleSlot;

/// Slots by role name.
pub(crate) type Roles = BTreeMap<String, Arc<RoleSlot>>;

/// A shared handle on the list of running roles (cloning shares it).
#[derive(Debug, Clone, Default)]
pub(crate) struct RoleDirectory(Arc<ArcSwap<Roles>>);

impl RoleDirectory {
    /// The roles now.
    pub(crate) fn load(&self) -> Arc<Roles> {
        self.0.load_full()
    }

    /// One role's slot.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<RoleSlot>> {
        self.0.load().get(name).cloned()
    }

    /// Adds (or replaces) these slots under their roles' names.
    pub(crate) fn insert(&self, slots: impl IntoIterator<Item = Arc<RoleSlot>>) {
        let mut roles = (**self.0.load()).clone();
        for slot in slots {
            roles.insert(slot.name().to_string(), slot);
        }
        self.0.store(Arc::new(roles));
    }

    /// Drops `slot`, unless another slot of the same name has replaced it.
    pub(crate) fn forget(&self, slot: &Arc<RoleSlot>) {
        let current = self.0.load();
        if current
            .get(slot.name())
            .is_some_and(|s| Arc::ptr_eq(s, slot))
        {
            let mut roles = (**current).clone();
            roles.remove(slot.name());
            self.0.store(Arc::new(roles));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_role_is_not_forgotten_by_its_predecessor() {
        let roles = RoleDirectory::default();
        let old = RoleSlot::new("dev");
        roles.insert([old.clone(), RoleSlot::new("ops")]);
        let new = RoleSlot::new("dev");
        roles.insert([new.clone()]);
        roles.forget(&old);
        assert!(roles.get("dev").is_some_and(|s| Arc::ptr_eq(&s, &new)));
        roles.forget(&new);
        assert!(roles.get("dev").is_none());
        let names: Vec<String> = roles.load().keys().cloned().collect();
        assert_eq!(names, ["ops"]);
    }

    #[test]
    fn clones_share_one_list() {
        let roles = RoleDirectory::default();
        let seen_by_status = roles.clone();
        roles.insert([RoleSlot::new("dev")]);
        assert!(seen_by_status.get("dev").is_some());
    }
}
