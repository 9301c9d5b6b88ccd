//! Active ISO 4217 currency codes (2026 list, funds and precious metals excluded).

const CODES: &str =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD \
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD \
HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL \
MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD \
RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD \
UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

pub fn is_iso4217(code: &str) -> bool {
    code.len() == 3 && CODES.split_ascii_whitespace().any(|c| c == code)
}

/// Currencies whose minor unit is the unit itself (ISO 4217 exponent 0).
const WHOLE_UNITS: &str = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF";

/// Decimal digits of the currency's minor unit that amounts may carry: 0 or 2 (amounts are kept in
/// hundredths, so the three-decimal currencies are held to two).
pub fn minor_unit_digits(code: &str) -> u8 {
    if WHOLE_UNITS.split_ascii_whitespace().any(|c| c == code) {
        0
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_and_unknown_codes() {
        assert!(super::is_iso4217("USD"));
        assert!(super::is_iso4217("KHR"));
        assert!(!super::is_iso4217("usd"));
        assert!(!super::is_iso4217("XYZ"));
        assert!(!super::is_iso4217("US"));
    }

    #[test]
    fn minor_units() {
        assert_eq!(super::minor_unit_digits("USD"), 2);
        assert_eq!(super::minor_unit_digits("KHR"), 2);
        assert_eq!(super::minor_unit_digits("JPY"), 0);
    }
}
