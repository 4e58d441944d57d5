//! The OpenAPI description, generated from the handlers' annotations and the wire types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes::{admin, auth, messages, ops, rooms};

#[derive(OpenApi)]
#[openapi(
    info(title = "Banter", description = "Real-time team chat. The WebSocket protocol at `/ws/` is described in the project's API.md."),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, auth::me,
        rooms::list, rooms::create, rooms::get, rooms::update, rooms::delete, rooms::join, rooms::leave,
        rooms::members, rooms::invite, rooms::set_role, rooms::remove_member, rooms::direct, rooms::read,
        messages::history, messages::history_original, messages::post, messages::edit, messages::delete,
        admin::users, admin::update_user, admin::rooms,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
