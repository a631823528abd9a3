//! What org admins and operators may do (A1, A2): who the acting admin is, and what each of
//! them is allowed to touch.

use crate::audit::Actor;
use crate::store::users::User;
use crate::users::Role;

/// Who is acting as an administrator of a tenant.
#[derive(Debug, Clone)]
pub enum AdminActor {
    /// An owner or admin signed in to the console.
    User(Box<User>),
    /// A client-credentials token with the `passgate:admin` scope.
    Client(String),
    /// The operator's command line.
    Cli,
}

/// Why an administrator may not do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    #[error("only owners and admins can do this")]
    NotAnAdmin,
    #[error("an admin cannot act on an owner")]
    TargetIsOwner,
}

impl AdminActor {
    pub fn audit(&self) -> Actor {
        match self {
            AdminActor::User(u) => Actor::User(u.id.clone()),
            AdminActor::Client(id) => Actor::Client(id.clone()),
            AdminActor::Cli => Actor::Cli,
        }
    }

    /// Who made something (a link, a review), as stored beside it.
    pub fn created_by(&self) -> Option<&str> {
        match self {
            AdminActor::User(u) => Some(u.id.as_str()),
            AdminActor::Client(id) => Some(id.as_str()),
            AdminActor::Cli => None,
        }
    }

    /// The reviewer's name in the audit log's review records.
    pub fn reviewer_name(&self) -> String {
        match self {
            AdminActor::User(u) => format!("user:{}", u.id),
            AdminActor::Client(id) => format!("client:{id}"),
            AdminActor::Cli => "cli".to_string(),
        }
    }

    /// Owners may act on anyone; admins and admin clients on anyone but an owner.
    pub fn may_act_on(&self, target: &User) -> Result<(), AdminRefusal> {
        let target_is_owner = Role::of(target) == Role::Owner;
        match self {
            AdminActor::Cli => Ok(()),
            AdminActor::User(actor) if !Role::of(actor).is_admin() => Err(AdminRefusal::NotAnAdmin),
            AdminActor::User(actor) if Role::of(actor) == Role::Owner => Ok(()),
            _ if target_is_owner => Err(AdminRefusal::TargetIsOwner),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> User {
        crate::users::sample_user(role.as_str(), role)
    }

    #[test]
    fn owners_act_on_anyone_admins_on_anyone_but_owners_members_on_nobody_a2() {
        use AdminRefusal::{NotAnAdmin, TargetIsOwner};
        let as_user = |role| AdminActor::User(Box::new(user(role)));
        let table = [
            (as_user(Role::Owner), Role::Owner, Ok(())),
            (as_user(Role::Owner), Role::Member, Ok(())),
            (as_user(Role::Admin), Role::Admin, Ok(())),
            (as_user(Role::Admin), Role::Member, Ok(())),
            (as_user(Role::Admin), Role::Owner, Err(TargetIsOwner)),
            (as_user(Role::Member), Role::Member, Err(NotAnAdmin)),
            (AdminActor::Client("c".into()), Role::Member, Ok(())),
            (
                AdminActor::Client("c".into()),
                Role::Owner,
                Err(TargetIsOwner),
            ),
            (AdminActor::Cli, Role::Owner, Ok(())),
        ];
        for (actor, target, expected) in table {
            assert_eq!(
                actor.may_act_on(&user(target)),
                expected,
                "{actor:?} on {target:?}"
            );
        }
    }
}
