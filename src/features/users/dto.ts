import { toOvhDate } from '../../clock.js';
import type { UserRow } from '../../db/types.js';

/** OVH's `dedicatedCloud.User`, plus our extension `twoFactor`. */
export function toUserDto(row: UserRow) {
  return {
    activationState: row.activation_state,
    activeDirectoryId: null,
    activeDirectoryType: null,
    canManageIpFailOvers: row.can_manage_ip_fail_overs,
    canManageNetwork: row.can_manage_network,
    canManageRights: row.can_manage_rights,
    email: row.email,
    encryptionRight: row.encryption_right,
    firstName: row.first_name,
    fullAdminRo: row.full_admin_ro,
    identityProviderId: null,
    identityProviderType: null,
    isEnableManageable: true,
    isTokenValidator: row.is_token_validator,
    lastName: row.last_name,
    login: `${row.name}@${row.service_name}`,
    name: row.name,
    nsxRight: row.nsx_right,
    phoneNumber: row.phone_number,
    receiveAlerts: row.receive_alerts,
    state: row.state,
    type: 'user' as const,
    userId: row.user_id,
    twoFactor: {
      state: row.totp_secret_ciphertext ? ('enabled' as const) : ('none' as const),
      enabledAt: toOvhDate(row.totp_enabled_at),
    },
  };
}
export type UserDto = ReturnType<typeof toUserDto>;
