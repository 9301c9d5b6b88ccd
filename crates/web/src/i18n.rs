//! UI texts in English and Khmer, from Fluent files embedded in the binary.

use fluent_bundle::{concurrent::FluentBundle, FluentArgs, FluentResource};
use unic_langid::LanguageIdentifier;

/// A language the UI speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Km,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Km => "km",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "km" => Some(Lang::Km),
            _ => None,
        }
    }

    /// The first of our languages in an `Accept-Language` header, else English.
    pub fn from_accept_language(header: &str) -> Lang {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .find_map(|tag| Lang::parse(tag.trim().split('-').next().unwrap_or("").to_ascii_lowercase().as_str()))
            .unwrap_or(Lang::En)
    }
}

pub const EN_FTL: &str = include_str!("../locales/en.ftl");
pub const KM_FTL: &str = include_str!("../locales/km.ftl");

pub struct I18n {
    en: FluentBundle<FluentResource>,
    km: FluentBundle<FluentResource>,
}

fn bundle(lang: &str, source: &str) -> FluentBundle<FluentResource> {
    let id: LanguageIdentifier = lang.parse().expect("language id");
    let resource = FluentResource::try_new(source.to_owned()).unwrap_or_else(|(_, errors)| {
        panic!("locales/{lang}.ftl does not parse: {errors:?}");
    });
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Isolation marks (U+2068/2069) around arguments would show up in inputs and CSV; texts are not bidi.
    bundle.set_use_isolating(false);
    bundle.add_resource(resource).expect("no duplicate message ids");
    bundle
}

impl Default for I18n {
    fn default() -> Self {
        I18n { en: bundle("en", EN_FTL), km: bundle("km", KM_FTL) }
    }
}

impl I18n {
    /// The text for `key` in `lang`, falling back to English, then to the key itself.
    pub fn text(&self, lang: Lang, key: &str, args: Option<&FluentArgs>) -> String {
        let bundles = match lang {
            Lang::En => [&self.en, &self.en],
            Lang::Km => [&self.km, &self.en],
        };
        for bundle in bundles {
            if let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                return bundle.format_pattern(pattern, args, &mut errors).into_owned();
            }
        }
        key.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(source: &str) -> Vec<String> {
        let resource = FluentResource::try_new(source.to_owned()).expect("parses");
        resource
            .entries()
            .filter_map(|e| match e {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn both_languages_have_the_same_messages() {
        let (en, km) = (ids(EN_FTL), ids(KM_FTL));
        let missing_in_km: Vec<_> = en.iter().filter(|id| !km.contains(id)).collect();
        let missing_in_en: Vec<_> = km.iter().filter(|id| !en.contains(id)).collect();
        assert!(missing_in_km.is_empty(), "missing in km.ftl: {missing_in_km:?}");
        assert!(missing_in_en.is_empty(), "missing in en.ftl: {missing_in_en:?}");
    }

    #[test]
    fn every_key_a_template_uses_exists() {
        let en = ids(EN_FTL);
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(dir).expect("templates dir") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("template");
            for call in [".t(\"", ".tn(\"", ".ta(\""] {
                for piece in text.split(call).skip(1) {
                    let key = piece.split('"').next().unwrap_or_default();
                    if !en.iter().any(|id| id == key) {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys without text: {missing:?}");
    }

    #[test]
    fn falls_back_and_formats_arguments() {
        let i18n = I18n::default();
        assert_eq!(i18n.text(Lang::En, "no-such-key", None), "no-such-key");
        let mut args = FluentArgs::new();
        args.set("n", 3);
        assert_eq!(i18n.text(Lang::En, "tickets-count", Some(&args)), "3 tickets");
        assert_ne!(i18n.text(Lang::Km, "nav-events", None), i18n.text(Lang::En, "nav-events", None));
    }

    #[test]
    fn accept_language_picks_khmer_when_asked() {
        assert_eq!(Lang::from_accept_language("km-KH,km;q=0.9,en;q=0.8"), Lang::Km);
        assert_eq!(Lang::from_accept_language("fr-FR,en;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }
}
