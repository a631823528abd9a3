//! Static files are compiled into the binary: one artefact to deploy, nothing to find on disk.

use actix_web::{HttpResponse, web};

use super::AppError;

const FILES: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
    (
        "passgate.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/passgate.js"),
    ),
];

pub async fn get_static(file: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (_, content_type, body) = FILES
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or_else(|| AppError::not_found("No such file."))?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(*body))
}
