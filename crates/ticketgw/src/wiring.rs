//! In-process implementations of the interfaces services expect from each other.

use std::sync::Arc;

use tg_events::{document::Organizer, ports::OrganizerDirectory};
use tg_users::{model::OrganizerProfile, UsersService};

/// The events service's view of organizer profiles, answered by the users service in the same process.
pub struct UsersDirectory(pub Arc<UsersService>);

fn to_organizer(p: OrganizerProfile) -> Organizer {
    Organizer {
        id: p.id,
        name: p.name,
        logo: p.logo,
        contact_email: p.contact_email,
        contact_phone: p.contact_phone,
        website: p.website,
    }
}

#[async_trait::async_trait]
impl OrganizerDirectory for UsersDirectory {
    async fn organizer_of_user(&self, user_id: &str) -> anyhow::Result<Option<Organizer>> {
        Ok(self.0.organizer_of(user_id).await?.map(to_organizer))
    }
    async fn organizer(&self, organizer_id: &str) -> anyhow::Result<Option<Organizer>> {
        Ok(self.0.organizer(organizer_id).await?.map(to_organizer))
    }
}
